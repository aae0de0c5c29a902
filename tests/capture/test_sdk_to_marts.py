"""End to end on 127.0.0.1: SDK -> collector -> landing -> ``convo-warehouse run`` -> marts.

One landing folder, four deliveries, one pipeline run:

* normal: scripted conversations; ``marts.fct_conversations`` must equal what was sent;
* crash: the collector is SIGKILLed in the middle of a stream and restarted;
* down at start: the SDK spools until the collector comes up;
* lost answer: a proxy drops the collector's answer to one batch, the SDK
  retries, and a collector without a recent-id window stores it twice.

Then every event sent is in ``staging.stg_events`` exactly once.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from support.capture import REPO_ROOT, AnswerDroppingProxy, CollectorProcess, free_port, wait_for
from support.cli import invoke
from support.pipeline import pipeline_env

from convo_capture import Tracker

TOKEN = "e2e-token"


def tracker_for(url: str, spool: Path, **options) -> Tracker:
    settings = {"token": TOKEN, "spool_dir": spool, "flush_interval": 0.05, "backoff_base": 0.05,
                "probe_interval": 0.3, "register_atexit": False, **options}
    return Tracker(url, **settings)


def scripted_conversations(tracker: Tracker, count: int) -> dict[str, dict]:
    """Conversations of known shape; returns the fct_conversations values each must get."""
    expected = {}
    for i in range(count):
        with tracker.conversation(f"normal-{i:03d}", user_id=f"u-{i}", channel="web", agent_id="a-1") as convo:
            convo.user_message("My order has not arrived")
            convo.agent_message("Let me check", model="m-1", input_tokens=50 + i, output_tokens=5)
            if i % 2:
                convo.tool_called("lookup_order")
            convo.user_message("Thanks, what now?")
            convo.agent_message("It ships tomorrow", model="m-1", input_tokens=80, output_tokens=6)
            outcome = ("completed", "escalated", "converted", "in_progress")[i % 4]
            if outcome == "completed":
                convo.completed()
            elif outcome == "escalated":
                convo.handoff("billing")
            elif outcome == "converted":
                convo.conversion("demo_booked")
            feedback = (None, "positive", 4)[i % 3]
            if feedback is not None:
                convo.feedback(feedback)
        expected[convo.conversation_id] = {
            "user_turns": 2, "agent_messages": 2, "tool_calls": i % 2, "outcome": outcome,
            "feedback_score": {None: None, "positive": 1.0, 4: 0.75}[feedback], "channel": "web",
            "user_id": f"u-{i}", "agent_id": "a-1",
        }
    return expected


def stream(tracker: Tracker, prefix: str, conversations: int, turns: int, pause: float) -> list[str]:
    """``turns`` rounds of a user message and its reply in each conversation; the event ids sent."""
    ids = []
    for turn in range(turns):
        for c in range(conversations):
            for event_type in ("user_message", "agent_message"):
                ids.append(tracker.track(event_type, f"{prefix}-{c:03d}", {"content": f"{event_type} {turn}"}))
        time.sleep(pause)
    return ids


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    root = tmp_path_factory.mktemp("capture-e2e")
    landing = root / "landing"
    landing.mkdir()
    port = free_port()
    sent: dict[str, list[str]] = {}
    counters = {}

    # down at start: the tracker spools until the collector answers
    late = tracker_for(f"http://127.0.0.1:{port}", root / "spool-late", max_attempts=2)
    sent["late"] = stream(late, "late", 10, 5, 0)
    wait_for(lambda: late.counters().spooled == 100, 30, "events to be spooled while the collector is down")

    collector = CollectorProcess(landing, port, f"{TOKEN}", "--rotate-seconds", "0.5").start()
    try:
        wait_for(lambda: late.counters().sent == 100, 30, "spooled events to be delivered")
        counters["late"] = late.close()

        # normal
        normal = tracker_for(collector.url, root / "spool-normal")
        expected = scripted_conversations(normal, 24)
        counters["normal"] = normal.close(timeout=20)

        # crash: SIGKILL in the middle of a stream, then restart
        crash = tracker_for(collector.url, root / "spool-crash", batch_size=50)
        result: list[str] = []
        streamer = threading.Thread(target=lambda: result.extend(stream(crash, "crash", 20, 75, 0.02)))
        streamer.start()
        wait_for(lambda: crash.counters().sent >= 600, 60, "part of the stream to be acknowledged")
        collector.kill()
        acknowledged_before_kill = crash.counters().sent
        time.sleep(1.0)
        collector.start()
        streamer.join(120)
        sent["crash"] = result
        wait_for(lambda: crash.counters().sent >= len(result), 60, "every held event to be delivered")
        counters["crash"] = crash.close(timeout=20)
    finally:
        collector.stop()

    # lost answer: no recent-id window, so the retried batch is stored twice (in one
    # file: a second file of identical content would be skipped by the loader's hash)
    forgetful = CollectorProcess(landing, None, TOKEN, "--dedupe-window", "0", "--rotate-seconds", "60").start()
    try:
        with AnswerDroppingProxy(forgetful.port) as proxy:
            retrying = tracker_for(proxy.url, root / "spool-retry")
            sent["retry"] = stream(retrying, "retry", 5, 1, 0)
            assert retrying.flush(30)
            counters["retry"] = retrying.close(timeout=20)
            assert proxy.dropped == 1
    finally:
        forgetful.stop()

    warehouse = root / "warehouse.duckdb"
    env = {**os.environ, **pipeline_env(root), "CONVO_LANDING_DIR": str(landing), "DBT_LOG_PATH": str(root / "dbt-logs"),
           "DAGSTER_HOME": str(root / "dagster"), "DBT_PROFILES_DIR": str(REPO_ROOT)}
    (root / "dagster").mkdir()
    (root / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    started = time.monotonic()
    run = invoke(["run", "--quiet"], env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    print(f"convo-warehouse run took {time.monotonic() - started:.0f} s")
    return {"warehouse": warehouse, "sent": sent, "expected": expected, "counters": counters,
            "acknowledged_before_kill": acknowledged_before_kill, "landing": landing}


def query(delivered, sql: str, params=None):
    import duckdb

    con = duckdb.connect(str(delivered["warehouse"]), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_marts_equal_what_was_sent(delivered):
    expected = delivered["expected"]
    rows = query(delivered, """
        select conversation_id, user_turns, agent_messages, tool_calls, outcome, feedback_score, channel,
               user_id, agent_id
        from marts.fct_conversations where conversation_id like 'normal-%'""")
    actual = {row[0]: dict(zip(["user_turns", "agent_messages", "tool_calls", "outcome", "feedback_score",
                                "channel", "user_id", "agent_id"], row[1:])) for row in rows}
    assert actual == expected
    tokens = query(delivered, """
        select sum(input_tokens), sum(output_tokens), count(*) from staging.stg_events
        where event_type = 'agent_message' and conversation_id like 'normal-%'""")[0]
    assert tokens == (sum(50 + i for i in range(24)) + 80 * 24, 11 * 24, 48)


# The collector's live state adds intervention_triggered events of its own
# (docs/capture.md): they are not events the client sent.
SENT = "event_type <> 'intervention_triggered'"


def test_every_event_is_staged_exactly_once(delivered):
    for scenario, ids in delivered["sent"].items():
        counts = dict(query(delivered, "select event_id, count(*) from staging.stg_events "
                                       f"where conversation_id like ? and {SENT} group by 1", [f"{scenario}-%"]))
        assert set(counts) == set(ids), f"{scenario}: {len(set(ids) - set(counts))} sent events missing"
        assert set(counts.values()) == {1}
    for scenario, counters in delivered["counters"].items():
        assert counters.dropped == 0 and counters.rejected == 0, (scenario, counters)


def test_crash_lost_nothing_acknowledged(delivered):
    crash = delivered["counters"]["crash"]
    assert delivered["acknowledged_before_kill"] >= 600
    assert crash.sent >= len(delivered["sent"]["crash"]) == 3000
    # the open file of the killed collector was recovered at restart, not left in .tmp
    assert not list((delivered["landing"] / ".tmp").glob("*.part"))


def test_a_retry_after_a_lost_answer_is_a_duplicate_staging_drops(delivered):
    ids = delivered["sent"]["retry"]
    raw = dict(query(delivered, "select event_id, count(*) from raw.events where conversation_id like 'retry-%' "
                                "group by 1"))
    assert max(raw.values()) == 2, "the batch whose answer was lost should have been stored twice"
    assert delivered["counters"]["retry"].retried >= 1
    staged = query(delivered, f"select count(*) from staging.stg_events where conversation_id like 'retry-%' and {SENT}")
    assert staged == [(len(ids),)]
