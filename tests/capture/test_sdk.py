"""The capture SDK on its own: ids, the landing mode, retries, the spool (fake servers on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.capture import ScriptedServer, free_port, wait_for

from convo_capture import Tracker, uuid7
from convo_capture.ids import uuid7_time
from convo_warehouse.lib.landing import discover_files


def test_sdk_imports_without_dagster_dbt_or_duckdb(tmp_path: Path):
    code = (
        "import sys\n"
        "from convo_capture import Tracker\n"
        "t = Tracker(landing_dir=sys.argv[1], register_atexit=False)\n"
        "t.assign_variant('greeting_tone', 'c-1', ['control', 'warm'])\n"
        "t.close()\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'dbt', 'duckdb', 'pandas', 'yaml'})\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"importing the SDK pulled in: {result.stdout}"


def test_uuid7_is_version_7_time_ordered_and_unique():
    ids = [uuid7() for _ in range(20_000)]
    parsed = [uuid.UUID(value) for value in ids]
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in parsed)
    assert ids == sorted(ids), "ids of one process must sort in creation order"
    assert len(set(ids)) == len(ids)
    assert abs(uuid7_time(ids[0]) - datetime.now(UTC)) < timedelta(seconds=5)


def test_conversation_calls_write_contract_events_to_landing(tmp_path: Path):
    landing = tmp_path / "landing"
    with Tracker(landing_dir=landing, channel="web", register_atexit=False) as tracker:
        with tracker.conversation("c-1", user_id="u-1", device="mobile") as convo:
            convo.user_message("hello")
            convo.agent_message("hi there", model="m-1", input_tokens=12, output_tokens=3)
            convo.tool_called("lookup_order")
            convo.user_message("thanks")
            convo.feedback(5)
            variant = convo.assign_variant("greeting_tone", ["control", "warm"])
            convo.completed()
    # what writers keep in dot-folders is never loaded
    for hidden in (".tmp/being-written.jsonl", ".rejected/collector/x.jsonl", ".convo_spool/spool-1-2.jsonl"):
        (landing / hidden).parent.mkdir(parents=True, exist_ok=True)
        (landing / hidden).write_text('{"event_id": "hidden"}\n')
    files = discover_files(landing)
    assert files and all(path.parts[-3] == "sdk" for path in files)
    assert not list((landing / ".tmp").glob("*.part")), "no partial file is left behind"
    events = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    types = [event["event_type"] for event in events]
    assert types == ["conversation_started", "user_message", "agent_message", "tool_called", "user_message",
                     "feedback_received", "experiment_exposure", "conversation_completed"]
    assert {event["conversation_id"] for event in events} == {"c-1"}
    assert {event["channel"] for event in events} == {"web"}
    assert events[0]["properties"] == {"device": "mobile"}
    assert events[2]["properties"]["input_tokens"] == 12 and events[2]["properties"]["turn"] == 1
    assert events[4]["properties"]["turn"] == 2
    assert events[6]["properties"] == {"test_name": "greeting_tone", "variant": variant}
    assert events[7]["properties"] == {"total_turns": 2}
    stamps = [datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")) for event in events]
    assert all(stamp.utcoffset() == timedelta(0) for stamp in stamps) and stamps == sorted(stamps)


def test_assign_variant_uses_the_contract_rule(tmp_path: Path):
    from convo_warehouse.lib.assignment import assign_variant

    with Tracker(landing_dir=tmp_path, register_atexit=False) as tracker:
        chosen = [tracker.assign_variant("t", f"c-{i}", ["a", "b", "c"]) for i in range(30)]
    assert chosen == [assign_variant("t", f"c-{i}", ["a", "b", "c"]) for i in range(30)]
    assert set(chosen) == {"a", "b", "c"}


def test_retries_429_and_5xx_honouring_retry_after(tmp_path: Path):
    script = [(429, {"Retry-After": "0.6"}, b"slow down"), (503, {}, b"busy")]
    with ScriptedServer(script) as server:
        tracker = Tracker(server.url, spool_dir=tmp_path / "spool", backoff_base=0.01,
                          flush_interval=0.05, register_atexit=False)
        tracker.track("user_message", "c-1", {"content": "hi"})
        assert tracker.flush(10)
        counters = tracker.close()
    assert len(server.requests) == 3
    assert server.requests[1][0] - server.requests[0][0] >= 0.6, "Retry-After was not honoured"
    assert counters.sent == 1 and counters.retried == 2 and counters.spooled == 0 and counters.dropped == 0
    bodies = [json.loads(body)["events"][0]["event_id"] for _, body in server.requests]
    assert len(set(bodies)) == 1, "a retry must resend the same event_id"


def test_no_retry_on_validation_answers(tmp_path: Path, caplog):
    rejected = json.dumps({"results": [{"index": 0, "status": "rejected", "reason": "unparseable_timestamp",
                                        "detail": "unparseable timestamp: soon"}]}).encode()
    script = [(200, {}, rejected), (400, {}, b'{"error": "bad"}')]
    with ScriptedServer(script) as server:
        tracker = Tracker(server.url, spool_dir=tmp_path / "spool", flush_interval=0.05, register_atexit=False)
        tracker.track("user_message", "c-1", timestamp=datetime(2026, 1, 1))
        assert tracker.flush(10)
        tracker.track("user_message", "c-1")
        assert tracker.flush(10)
        counters = tracker.close()
    assert len(server.requests) == 2, "a 4xx or a rejected event must not be retried"
    assert counters.rejected == 1 and counters.dropped == 1 and counters.retried == 0
    assert "unparseable_timestamp" in caplog.text


def test_collector_down_spools_then_delivers(tmp_path: Path):
    port = free_port()
    tracker = Tracker(f"http://127.0.0.1:{port}", spool_dir=tmp_path / "spool", max_attempts=2,
                      backoff_base=0.01, flush_interval=0.05, probe_interval=0.2, register_atexit=False)
    sent_ids = [tracker.track("user_message", f"c-{i}", {"content": f"m{i}"}) for i in range(50)]
    wait_for(lambda: tracker.counters().spooled == 50, 20, "events to be spooled")
    assert tracker.spool.has_segments()
    with ScriptedServer([], port=port) as server:
        wait_for(lambda: tracker.counters().sent == 50, 20, "spooled events to be delivered")
        counters = tracker.close()
        received = [event["event_id"] for event in server.events_received()]
    assert sorted(received) == sorted(sent_ids)
    assert counters.dropped == 0 and not tracker.spool.has_segments()


def test_full_queue_spills_to_spool_and_close_loses_nothing(tmp_path: Path):
    port = free_port()  # nothing listens: every send fails
    tracker = Tracker(f"http://127.0.0.1:{port}", spool_dir=tmp_path / "spool", queue_size=5, max_attempts=1,
                      flush_interval=0.05, probe_interval=60, register_atexit=False)
    ids = [tracker.track("user_message", "c-1") for _ in range(40)]
    counters = tracker.close(timeout=2)
    assert counters.spooled == 40 and counters.sent == 0 and counters.dropped == 0
    spooled = [json.loads(line)["event_id"] for path in (tmp_path / "spool").glob("spool-*.jsonl")
               for line in path.read_text().splitlines()]
    assert sorted(spooled) == sorted(ids)


def test_a_new_tracker_resends_an_ended_process_spool(tmp_path: Path):
    spool = tmp_path / "spool"
    down = Tracker(f"http://127.0.0.1:{free_port()}", spool_dir=spool, max_attempts=1, register_atexit=False)
    ids = [down.track("user_message", "c-1") for _ in range(10)]
    down.close(timeout=2)
    with ScriptedServer([]) as server:
        fresh = Tracker(server.url, spool_dir=spool, flush_interval=0.05, register_atexit=False)
        wait_for(lambda: fresh.counters().sent == 10, 20, "the old spool to be re-sent")
        fresh.close()
        assert sorted(event["event_id"] for event in server.events_received()) == sorted(ids)


def test_exit_flushes_within_timeout(tmp_path: Path):
    code = (
        "import sys\n"
        "from convo_capture import Tracker\n"
        "t = Tracker(landing_dir=sys.argv[1], flush_interval=30)\n"
        "for i in range(100): t.track('user_message', 'c-1')\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=60)
    assert time.monotonic() - started < 30, "atexit must not wait for the flush interval"
    lines = [line for path in discover_files(tmp_path) for line in path.read_text().splitlines()]
    assert len(lines) == 100


def test_close_spools_a_batch_whose_send_hangs(tmp_path: Path):
    import socket

    silent = socket.socket()  # accepts connections (backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        tracker = Tracker(f"http://127.0.0.1:{silent.getsockname()[1]}", spool_dir=tmp_path / "spool",
                          timeout=30, flush_interval=0.05, register_atexit=False)
        ids = [tracker.track("user_message", "c-1") for _ in range(5)]
        wait_for(lambda: tracker.counters().queued == 0, 10, "the sender to take the batch")
        started = time.monotonic()
        counters = tracker.close(timeout=1)
        assert time.monotonic() - started < 10
    finally:
        silent.close()
    # the hung send now fails; the sender must not spool the batch close() took
    wait_for(lambda: tracker._engine._in_flight is None, 10, "the hung send to end")
    assert tracker.counters().spooled == counters.spooled == 5
    spooled = [json.loads(line)["event_id"] for path in (tmp_path / "spool").glob("spool-*.jsonl")
               for line in path.read_text().splitlines()]
    assert sorted(spooled) == sorted(ids)
