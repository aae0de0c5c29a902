"""The collector's side of the live state: a worker process fed through a bounded queue.

Stage rules, sentiment and intervention rules are Python work per event,
several times the collector's own (docs/capture.md); run in the collector's
process they would share its GIL and cut its throughput. So the live state lives in its own process
(``live_worker.main``): after a batch is stored, the collector hands it the
batch's landed lines (bytes: nothing to serialise) and the time of the
acknowledgement, with a non-blocking put on a bounded queue, and answers.
A full queue (the worker far behind) drops the batch from the live state
(counted as ``live_dropped_events``), never slows the answer. Reads (``GET
/v1/conversations``) are requests over a pipe, answered by a thread of the
worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from convo_warehouse.lib.live.state import LiveSettings

log = logging.getLogger("convo_warehouse.collector")


@dataclass
class LiveConfig:
    landing_dir: Path
    subfolder: str = "collector"
    file_mode: int = 0o600
    rotate_bytes: int = 64 * 1024 * 1024
    rotate_seconds: float = 60.0
    settings: LiveSettings = field(default_factory=LiveSettings)
    stage_rules: str | None = None  # default: CONVO_STAGE_RULES or the packaged file
    intervention_rules: str | None = None  # default: CONVO_INTERVENTION_RULES or the packaged file
    webhook_url: str | None = None  # default: CONVO_INTERVENTION_WEBHOOK_URL
    webhook_max_queue: int = 10_000
    webhook_max_attempts: int = 5
    webhook_backoff_base: float = 0.2
    webhook_timeout: float = 5.0
    # landing files of the last this-many seconds are read back at start (default: twice the idle window)
    rebuild_seconds: float | None = None
    # bound of what waits for the worker: batches, and bytes of their lines
    max_queue_batches: int = 20_000
    max_queue_bytes: int = 256 * 1024 * 1024
    llm: bool = False  # CONVO_LIVE_LLM=1: rules marked `llm: confirm` are checked by the LLM first
    llm_timeout: float = 10.0
    llm_concurrency: int = 4
    llm_max_pending: int = 100
    parent_pid: int = 0


class LiveUnavailable(RuntimeError):
    """The live state did not answer (not started, busy rebuilding too long, or gone)."""


class LiveLink:
    """Start, feed, ask and stop the live worker process."""

    def __init__(self, config: LiveConfig) -> None:
        self.config = config
        self.dropped_events = 0
        self.submitted_batches = 0
        self._lock = threading.Lock()
        self._process = None
        self._queue = None
        self._connection = None

    def start(self) -> None:
        from convo_warehouse.collector import live_worker

        # spawn: the collector has threads (uvicorn, the rotation task); a fork would copy their locks
        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue(maxsize=self.config.max_queue_batches)
        self._queued_bytes = context.Value("q", 0)
        parent_end, child_end = context.Pipe()
        self.config.parent_pid = os.getpid()
        self._process = context.Process(target=live_worker.main,
                                        args=(self.config, self._queue, child_end, self._queued_bytes),
                                        name="convo-live-state", daemon=True)
        self._process.start()
        child_end.close()
        self._connection = parent_end
        log.info("collector: live state worker started (pid %s)", self._process.pid)

    def submit(self, lines: list[bytes], acknowledged_at: float) -> None:
        """Hand a stored batch to the worker; never blocks."""
        if self._queue is None:
            return
        payload = b"\n".join(lines)
        try:
            with self._queued_bytes.get_lock():
                if self._queued_bytes.value + len(payload) > self.config.max_queue_bytes:
                    raise queue.Full
                self._queued_bytes.value += len(payload)
            try:
                self._queue.put_nowait((payload, acknowledged_at))
            except queue.Full:
                with self._queued_bytes.get_lock():
                    self._queued_bytes.value -= len(payload)
                raise
            self.submitted_batches += 1
        except queue.Full:
            self.dropped_events += len(lines)
            log.warning("collector: live state queue full; %d events not in the live state", len(lines))

    def ask(self, request: tuple, timeout: float = 10.0):
        """One request to the worker (``("conversation", id)``, ``("active", limit)``, ``("stats",)``)."""
        if self._connection is None or self._process is None or not self._process.is_alive():
            raise LiveUnavailable("the live state is not running")
        with self._lock:
            self._connection.send(request)
            if not self._connection.poll(timeout):
                raise LiveUnavailable(f"the live state did not answer within {timeout:g} s")
            return self._connection.recv()

    def stop(self, timeout: float = 15.0) -> None:
        """Let the worker apply what is queued, finish its files and send queued webhooks, then end."""
        if self._process is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._process.join(timeout)
        if self._process.is_alive():
            log.warning("collector: live state worker did not stop within %g s; terminating it", timeout)
            self._process.terminate()
            self._process.join(5)
            # what is still buffered for it will never be read: do not wait to flush it
            self._queue.cancel_join_thread()
        self._queue.close()
        self._queue.join_thread()
        self._process = None

    def wait_until_idle(self, timeout: float = 30.0) -> None:
        """Until everything submitted is applied (for tests and the benchmark)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.ask(("stats",))
            if stats["applied_batches"] >= self.submitted_batches and not stats["rebuilding"]:
                return
            time.sleep(0.02)
        raise LiveUnavailable(f"the live state was still busy after {timeout:g} s")
