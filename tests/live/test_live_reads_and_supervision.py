"""Reads of a slow live worker never get another read's answer (issue 47, item 3), and a worker that
dies is started again, counted, and reported as degraded meanwhile (item 5)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import pytest
from support.capture import CollectorProcess, wait_for
from support.live import TOKEN, Script, WebhookReceiver, applied, send

from convo_warehouse.collector.live import LiveConfig, LiveLink, LiveUnavailable


def stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (SIGSTOP takes effect after os.kill returns)."""
    from pathlib import Path

    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except (FileNotFoundError, IndexError):
            continue
    return bool(states) and all(state in ("T", "t") for state in states)


def test_a_read_given_up_on_never_answers_a_later_read(tmp_path):
    link = LiveLink(LiveConfig(landing_dir=tmp_path))
    link.start()
    try:
        names = [f"c-read-{number}" for number in range(6)]
        link.submit([json.dumps(Script(name).event("user_message", f"hello from {name}")).encode()
                     for name in names], time.time())
        link.wait_until_idle()
        pid = link._process.pid
        for round_number in range(4):
            os.kill(pid, signal.SIGSTOP)  # the worker is slow: every read now times out
            try:
                wait_for(lambda: stopped(pid), 5, "the worker stopped")
                for name in names[:3]:
                    with pytest.raises(LiveUnavailable):
                        link.ask(("conversation", name, None), timeout=0.2)
            finally:
                os.kill(pid, signal.SIGCONT)
            # it answers the reads given up on first; each later read must still get its own answer
            for name in reversed(names):
                answer = link.ask(("conversation", name, None), timeout=10)
                assert answer is not None and answer["conversation_id"] == name, (round_number, name, answer)
            assert link.ask(("stats", None), timeout=10)["conversations"] == len(names)
    finally:
        link.stop()


def health(collector: CollectorProcess) -> dict:
    with urllib.request.urlopen(collector.url + "/healthz", timeout=10) as answer:
        return json.loads(answer.read())


def test_a_dead_worker_is_restarted_and_reported_meanwhile(tmp_path):
    receiver = WebhookReceiver()
    collector = CollectorProcess(tmp_path / "landing", None, TOKEN, "--webhook-url", receiver.url).start()
    try:
        script = Script("c-before")
        send(collector, script.event("user_message", "hello"), script.event("agent_message", "Hi! How can I help?"))
        applied(collector, "c-before", 2)
        first = health(collector)
        assert first["status"] == "ok" and first["live"]["state"] == "running" and first["live"]["restarts"] == 0
        os.kill(first["live"]["pid"], signal.SIGKILL)
        wait_for(lambda: health(collector)["live"]["state"] == "restarting", 5, "the death noticed")
        down = health(collector)
        assert down["status"] == "degraded" and down["live"]["last_exit_code"] == -signal.SIGKILL
        # acknowledged while the worker is down: stored, and in the new worker's state once it is back
        during = Script("c-during")
        send(collector, during.event("user_message", "I want to talk to a real person"))
        wait_for(lambda: health(collector)["live"]["state"] == "running", 15, "the worker started again")
        back = health(collector)
        assert back["status"] == "ok" and back["live"]["restarts"] == 1 and back["live"]["pid"] != first["live"]["pid"]
        assert applied(collector, "c-before", 2)["messages"] == 2  # rebuilt from the open landing file
        applied(collector, "c-during", 1)
        wait_for(lambda: [r["body"]["conversation_id"] for r in receiver.delivered()] == ["c-during"], 15,
                 "the intervention of an event acknowledged while the worker was down")
    finally:
        collector.stop()
        receiver.close()


class _StuckQueue:
    """The collector's queue after the collector was killed while putting a batch: part of one is in
    the pipe, and a read waits for the rest forever, whatever its timeout."""

    def __init__(self) -> None:
        import threading

        self.never = threading.Event()

    def get(self, block: bool = True, timeout: float | None = None):
        self.never.wait()

    def get_nowait(self):
        self.never.wait()


def test_an_orphaned_worker_ends_and_finishes_its_file_though_its_queue_is_stuck(tmp_path, monkeypatch):
    """Its collector gone (here: a parent pid that is not its parent), the worker ends within a few of
    its half-second checks and finishes its open interventions file, even though a read of its queue
    never returns. Before, it waited on that read forever, holding its file in the landing folder's
    ``.tmp`` (seen after a SIGKILL of the collector in tests/capture/test_sdk_to_marts.py)."""
    import multiprocessing
    import threading

    from convo_warehouse.collector import live_worker

    line = b'{"event_type": "intervention_triggered"}'
    rebuild = live_worker.LiveWorker.rebuild

    def rebuild_then_store_a_firing(self):
        rebuild(self)
        self.writer.append([line])  # an interventions file open when the collector dies

    monkeypatch.setattr(live_worker.LiveWorker, "rebuild", rebuild_then_store_a_firing)
    parent_end, child_end = multiprocessing.Pipe()
    stuck = _StuckQueue()
    config = LiveConfig(landing_dir=tmp_path, parent_pid=-1)
    worker = threading.Thread(target=live_worker.main, args=(config, stuck, child_end, multiprocessing.Value("q", 0)),
                              daemon=True)
    worker.start()
    try:
        worker.join(15)
        assert not worker.is_alive(), "the orphaned worker still waits on its stuck queue"
    finally:
        stuck.never.set()
        parent_end.close()
    assert not list(tmp_path.rglob("*.part"))
    finished = list(tmp_path.rglob("interventions-*.jsonl"))
    assert [path.read_bytes() for path in finished] == [line + b"\n"]
