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
worker; each carries a number and its answer the same number, so the answer
to a read given up on (a slow worker) is recognised and dropped, never taken
for the next read's.

The worker is supervised: a thread of the collector notices when it ended
(a crash, a kill, the machine's OOM killer), counts it and starts a new one
after a backoff (0.5 s doubling, at most 30 s; back to 0.5 s once a worker
ran a minute). The new worker rebuilds the state from the landing files,
the open ones included, so nothing acknowledged meanwhile is missing.
``health()`` says ``running``, ``starting`` or ``restarting`` (down:
``/healthz`` reports the collector ``degraded``).
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
    webhook_url: str | None = None  # checked by collect (webhook.check_webhook_url) before it starts
    webhook_secrets: tuple[str, ...] = ()  # HMAC-SHA256 signing secrets (the first signs; all are sent)
    webhook_authorization: str | None = None  # an Authorization header value for the receiver
    webhook_allow_http: bool = False  # plain http to a host other than loopback
    webhook_raw_text: bool = False  # evidence text as written, not masked
    webhook_max_queue: int = 10_000
    webhook_max_attempts: int = 5
    webhook_backoff_base: float = 0.2
    webhook_timeout: float = 5.0
    # landing files of the last this-many seconds are read back at start (default: twice the idle window)
    rebuild_seconds: float | None = None
    # bound of what waits for the worker: batches, and bytes of their lines
    max_queue_batches: int = 20_000
    max_queue_bytes: int = 256 * 1024 * 1024
    # a worker started again while the collector runs also reads the collector's open landing files
    # (at the first start everything acknowledged after it is on the queue)
    read_open_files: bool = False
    llm: bool = False  # CONVO_LIVE_LLM=1: rules marked `llm: confirm` are checked by the LLM first
    llm_timeout: float = 10.0
    llm_concurrency: int = 4
    llm_max_pending: int = 100
    parent_pid: int = 0


class LiveUnavailable(RuntimeError):
    """The live state did not answer (not started, busy rebuilding too long, or gone)."""


class LiveLink:
    """Start, feed, ask, supervise and stop the live worker process."""

    RESTART_BACKOFF = (0.5, 30.0)  # first and longest wait before starting a worker again
    STABLE_SECONDS = 60.0  # a worker that ran this long resets the backoff

    def __init__(self, config: LiveConfig) -> None:
        self.config = config
        self.dropped_events = 0
        self.submitted_batches = 0
        self.restarts = 0
        self.last_exit: int | None = None
        self.state = "off"
        self._lock = threading.Lock()  # one read at a time on the pipe
        self._swap = threading.Lock()  # the process, queue and pipe change together
        self._process = None
        self._queue = None
        self._queued_bytes = None
        self._connection = None
        self._next_request = 0
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._started_at = 0.0

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="live-supervisor", daemon=True)
        self._watcher.start()

    def _spawn(self, restart: bool = False) -> None:
        from convo_warehouse.collector import live_worker

        self.config.read_open_files = restart
        # spawn: the collector has threads (uvicorn, the rotation task); a fork would copy their locks
        context = multiprocessing.get_context("spawn")
        batches = context.Queue(maxsize=self.config.max_queue_batches)
        queued_bytes = context.Value("q", 0)
        parent_end, child_end = context.Pipe()
        self.config.parent_pid = os.getpid()
        process = context.Process(target=live_worker.main, args=(self.config, batches, child_end, queued_bytes),
                                  name="convo-live-state", daemon=True)
        process.start()
        child_end.close()
        with self._swap:
            self._process, self._queue, self._queued_bytes, self._connection = (
                process, batches, queued_bytes, parent_end)
            self._started_at = time.monotonic()
            self.state = "running"
        log.info("collector: live state worker started (pid %s)", process.pid)

    def _watch(self) -> None:
        """Restart the worker whenever it ended without being told to."""
        backoff = self.RESTART_BACKOFF[0]
        while not self._stopping.wait(0.2):
            process = self._process
            if process is None or process.is_alive():
                continue
            if self._stopping.is_set():
                return
            self.last_exit = process.exitcode
            ran = time.monotonic() - self._started_at
            if ran >= self.STABLE_SECONDS:
                backoff = self.RESTART_BACKOFF[0]
            self.state = "restarting"
            log.error("collector: the live state worker (pid %s) ended with exit code %s after %.1f s; starting a "
                      "new one in %.1f s (restart %d)", process.pid, process.exitcode, ran, backoff, self.restarts + 1)
            self._discard_old()
            if self._stopping.wait(backoff):
                return
            backoff = min(self.RESTART_BACKOFF[1], backoff * 2)
            self.restarts += 1
            try:
                self._spawn(restart=True)
            except Exception:  # try again after the next backoff
                log.exception("collector: cannot start the live state worker")

    def _discard_old(self) -> None:
        with self._swap:
            batches, connection = self._queue, self._connection
            self._queue = self._connection = None
        if batches is not None:
            batches.cancel_join_thread()  # what is buffered for the dead worker is never read
            batches.close()
        if connection is not None:
            connection.close()

    def health(self) -> dict:
        process = self._process
        return {"state": self.state, "pid": process.pid if process is not None else None,
                "restarts": self.restarts, "last_exit_code": self.last_exit}

    def submit(self, lines: list[bytes], acknowledged_at: float) -> None:
        """Hand a stored batch to the worker; never blocks."""
        with self._swap:
            batches, queued_bytes = self._queue, self._queued_bytes
        if batches is None:
            self.dropped_events += len(lines)  # restarting: the new worker reads them back from the files
            return
        payload = b"\n".join(lines)
        try:
            with queued_bytes.get_lock():
                if queued_bytes.value + len(payload) > self.config.max_queue_bytes:
                    raise queue.Full
                queued_bytes.value += len(payload)
            try:
                batches.put_nowait((payload, acknowledged_at))
            except queue.Full:
                with queued_bytes.get_lock():
                    queued_bytes.value -= len(payload)
                raise
            self.submitted_batches += 1
        except queue.Full:
            self.dropped_events += len(lines)
            log.warning("collector: live state queue full; %d events not in the live state", len(lines))
        except (OSError, ValueError):  # the queue was closed by a restart meanwhile
            self.dropped_events += len(lines)

    def ask(self, request: tuple, timeout: float = 10.0):
        """One request to the worker (``("conversation", id, agents)``, ``("active", limit, after,
        max_bytes, agents)``, ``("stats", None)``...). The answer carries the request's number: an
        answer to an earlier request given up on is dropped, never returned for this one."""
        with self._lock:
            connection, process = self._connection, self._process
            if connection is None or process is None or not process.is_alive():
                raise LiveUnavailable("the live state is not running (restarting: retry shortly)")
            self._next_request += 1
            number = self._next_request
            deadline = time.monotonic() + timeout
            try:
                connection.send((number, request))
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not connection.poll(remaining):
                        raise LiveUnavailable(f"the live state did not answer within {timeout:g} s")
                    answered, answer = connection.recv()
                    if answered == number:
                        return answer
            except (EOFError, OSError, ValueError, TypeError) as error:
                raise LiveUnavailable(f"the live state is not running ({type(error).__name__})") from None

    def stop(self, timeout: float = 15.0) -> None:
        """Let the worker apply what is queued, finish its files and send queued webhooks, then end."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(5)
        process, batches = self._process, self._queue
        if process is None:
            return
        if batches is not None:
            try:
                batches.put(None, timeout=timeout)
            except (queue.Full, ValueError, OSError):
                pass
        process.join(timeout)
        if process.is_alive():
            log.warning("collector: live state worker did not stop within %g s; terminating it", timeout)
            process.terminate()
            process.join(5)
            if batches is not None:
                # what is still buffered for it will never be read: do not wait to flush it
                batches.cancel_join_thread()
        if batches is not None:
            batches.close()
            batches.join_thread()
        self._process = None
        self.state = "off"

    def wait_until_idle(self, timeout: float = 30.0) -> None:
        """Until everything submitted is applied (for tests and the benchmark)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.ask(("stats", None))
            if stats["applied_batches"] >= self.submitted_batches and not stats["rebuilding"]:
                return
            time.sleep(0.02)
        raise LiveUnavailable(f"the live state was still busy after {timeout:g} s")
