"""The live state's process: applies stored batches, fires interventions, answers reads.

Started by ``LiveLink`` (``collector/live.py``). At start it reads back the
collector's own landing files of the recent window (``rebuild``), so a
restart keeps the conversations in progress and the interventions already
fired; then it applies batches from the queue, a few at a time. A firing is
written to the landing folder as an ``intervention_triggered`` event (fsynced)
*before* its webhook is queued: after a crash it is known as fired and never
sent twice. That write is the job of a thread of its own, which stores all
the firings waiting with one fsync, so applying events never waits for the
disk (the rule stays ``pending`` meanwhile: it cannot fire twice). The
process ends with the collector (a ``None`` on the queue, or its parent
gone).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
import time
from collections import deque
from pathlib import Path

from convo_warehouse.collector.webhook import WebhookSender, WebhookSettings
from convo_warehouse.collector.writer import RotatingWriter
from convo_warehouse.lib.classify.rules import load_rules
from convo_warehouse.lib.live.interventions import Firing, load_intervention_rules
from convo_warehouse.lib.live.markers import Conversation
from convo_warehouse.lib.live.state import LiveState

log = logging.getLogger("convo_warehouse.collector.live")

_ENCODER = json.JSONEncoder(separators=(",", ":"))


class Latencies:
    """The most recent samples (seconds), for percentiles."""

    def __init__(self, size: int = 200_000) -> None:
        self.samples: deque[float] = deque(maxlen=size)

    def add(self, value: float, count: int = 1) -> None:
        for _ in range(min(count, 1000)):
            self.samples.append(value)

    def summary(self) -> dict:
        if not self.samples:
            return {"count": 0}
        ordered = sorted(self.samples)

        def at(share: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 3)

        return {"count": len(ordered), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99),
                "max_ms": round(ordered[-1] * 1000, 3)}


class LiveWorker:
    def __init__(self, config) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.state = LiveState(settings=config.settings, rules=load_rules(config.stage_rules),
                               interventions=load_intervention_rules(config.intervention_rules))
        self.writer = RotatingWriter(Path(config.landing_dir), config.subfolder, "interventions",
                                     config.rotate_bytes, config.rotate_seconds, config.file_mode)
        self.webhook = None
        self.webhook_latency = Latencies()
        if config.webhook_url:
            # checked by collect before the worker starts; a bad one here names no secret either
            self.webhook = WebhookSender(WebhookSettings(
                url=config.webhook_url, max_queue=config.webhook_max_queue,
                max_attempts=config.webhook_max_attempts, backoff_base=config.webhook_backoff_base,
                timeout=config.webhook_timeout, secrets=tuple(config.webhook_secrets),
                authorization=config.webhook_authorization, allow_http=config.webhook_allow_http,
            ))
            self.webhook.on_sent = self._webhook_sent
        self.update_latency = Latencies()
        self.rebuilding = True
        self.applied_batches = 0
        self.rebuild_report: dict = {}
        self.llm = LiveLLM(config, self) if config.llm else None
        self._to_store: queue.Queue[list[Firing] | None] = queue.Queue()
        self._storer = threading.Thread(target=self._store_firings, name="live-interventions", daemon=True)
        self._storer.start()

    # --- start: read back the recent landing files ----------------------------------------

    def rebuild(self) -> None:
        """Apply the collector's landing files of the recent window: first the interventions
        (so none fires twice), then the events; conversations idle longer than the window are
        dropped; a rule that holds but never fired (a crash between) fires now."""
        self.writer.recover()
        horizon = self.config.rebuild_seconds or 2 * self.state.settings.idle()
        since = time.time() - horizon
        folder = Path(self.config.landing_dir) / self.config.subfolder
        # and the collector's open files (a worker started again while the collector runs): their
        # complete lines were acknowledged
        open_files = Path(self.config.landing_dir) / ".tmp"
        files = sorted(
            [*(path for pattern in ("*/events-*.jsonl", "*/interventions-*.jsonl") for path in folder.glob(pattern)),
             *(path for pattern in ("events-*.jsonl.part", "interventions-*.jsonl.part")
               for path in (open_files.glob(pattern) if self.config.read_open_files else ()))],
            key=lambda path: (not path.name.startswith("interventions-"), path.name.split("-")[1], path.name),
        )
        files = [path for path in files if _modified(path) >= since]
        firings: list[Firing] = []
        events = 0
        for path in files:
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except FileNotFoundError:  # finished (renamed) meanwhile: its lines are in the dated folder
                continue
            if path.name.endswith(".part") and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]  # a line being written is not complete yet
            lines = data.splitlines()
            events += len(lines)
            with self.lock:
                firings += self.state.apply_lines(lines, acknowledged_at=_modified(path))
        with self.lock:
            self.state.expire()
            live = [firing for firing in firings
                    if (conversation := self.state.conversations.get(firing.conversation_id)) is not None
                    and conversation.ended is None]
            for firing in firings:
                if firing not in live and firing.conversation_id in self.state.conversations:
                    self.state.conversations[firing.conversation_id].pending.discard(firing.rule)
        self._fire(live)
        self.rebuild_report = {"files": len(files), "lines": events, "conversations": len(self.state.conversations),
                               "fired_on_rebuild": len(live)}
        log.info("live state rebuilt from %d landing files (%d lines): %d conversations in progress",
                 len(files), events, len(self.state.conversations))
        self.rebuilding = False

    # --- batches --------------------------------------------------------------------------

    def apply(self, batches: list[tuple[bytes, float]]) -> None:
        firings: list[Firing] = []
        applied = []
        for payload, acknowledged_at in batches:
            # the lock batch by batch: reads wait for one batch at most
            with self.lock:
                firings += self.state.apply_lines(payload.split(b"\n"), acknowledged_at)
            applied.append((payload.count(b"\n") + 1, acknowledged_at))
        done = time.time()
        with self.lock:
            for events, acknowledged_at in applied:
                self.update_latency.add(done - acknowledged_at, events)
            self.applied_batches += len(batches)
        if self.llm is not None:
            firings = self.llm.hold_back(firings)
        self.fire_later(firings)

    def fire_later(self, firings: list[Firing]) -> None:
        """Hand firings to the thread that stores them and queues their webhooks."""
        if firings:
            self._to_store.put(firings)

    def _store_firings(self) -> None:
        """The storing thread: every firing waiting, one write and fsync, until a None."""
        ending = False
        while not ending:
            item = self._to_store.get()
            firings = [] if item is None else list(item)
            ending = item is None
            while not ending:
                try:
                    more = self._to_store.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    ending = True
                else:
                    firings += more
            try:
                self._fire(firings)
            except Exception:  # the thread must go on storing the next ones
                log.exception("live state: cannot store %d interventions", len(firings))

    def _fire(self, firings: list[Firing]) -> None:
        """Store the firings (fsynced), mark them fired, then queue their webhooks."""
        if not firings:
            return
        try:
            self.writer.append([_ENCODER.encode(firing.landing_event()).encode("ascii") for firing in firings])
        except OSError:
            log.exception("live state: cannot write %d interventions to the landing folder; not sent", len(firings))
            with self.lock:
                for firing in firings:
                    conversation = self.state.conversations.get(firing.conversation_id)
                    if conversation is not None:
                        conversation.pending.discard(firing.rule)
            return
        with self.lock:
            for firing in firings:
                self.state.record_fired(firing)
        if self.webhook is not None:
            raw = self.state.settings.evidence_raw_text
            for firing in firings:
                self.webhook.submit(firing.webhook_payload() if raw else firing.masked_payload())

    def _webhook_sent(self, payload: dict, sent_at: float) -> None:
        self.webhook_latency.add(sent_at - payload["condition_met_at"])

    def housekeeping(self) -> None:
        with self.lock:
            self.state.expire()
        self.writer.rotate_if_due()

    # --- reads ----------------------------------------------------------------------------

    def answer(self, request: tuple):
        """A read: the last item of every request is the agents the asking key may read (None: all)."""
        kind, agents = request[0], request[-1]
        agents = None if agents is None else frozenset(agents)
        with self.lock:
            if kind == "conversation":
                return self.state.get(request[1], agents)
            if kind in ("active", "all"):
                _, limit, after, max_bytes, _ = request
                return self.state.page(limit, after, max_bytes, include_ended=kind == "all", agents=agents)
            if kind == "stats":
                return {
                    **self.state.stats(),
                    "rebuilding": self.rebuilding,
                    "applied_batches": self.applied_batches,
                    "rebuild": self.rebuild_report,
                    "update_latency": self.update_latency.summary(),
                    "webhook_latency": self.webhook_latency.summary(),
                    "webhook": dict(self.webhook.counts, queued=self.webhook.pending()) if self.webhook else None,
                    "llm": self.llm.counts if self.llm else None,
                    "rss_bytes": _rss_bytes(),
                }
        return {"error": f"unknown request {kind!r}"}

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
        self._to_store.put(None)
        self._storer.join(30)
        if self.webhook is not None:
            self.webhook.close()
        self.writer.close()


class LiveLLM:
    """The optional LLM check of rules marked ``llm: confirm`` (CONVO_LIVE_LLM=1).

    Before such a rule fires, the conversation's recent messages go to the
    LLM classifier of the batch (``lib/classify/llm.py``: same prompt, same
    validation, PII masked) on an event loop of its own, at most
    ``llm_concurrency`` at a time, each within ``llm_timeout``. If the LLM's
    stages still make the rule hold, it fires (``classifier: llm``); if not,
    it is declined for that conversation. Whenever the LLM cannot answer
    (disabled circuit, error, timeout, more than ``llm_max_pending`` waiting)
    the rule fires on the rules' stages (``classifier: rules`` with a
    ``fallback_reason``). Nothing here waits on the batch path.
    """

    def __init__(self, config, worker: LiveWorker) -> None:
        from convo_warehouse.lib.classify.llm import LLMClassifier, LLMSettings

        settings = LLMSettings.from_env()
        settings.timeout = config.llm_timeout
        settings.max_attempts = 1
        settings.concurrency = config.llm_concurrency
        self.classifier = LLMClassifier(settings)
        self.config = config
        self.worker = worker
        self.counts = {"checked": 0, "confirmed": 0, "declined": 0, "fallback": 0}
        self._pending = 0
        self._loop = asyncio.new_event_loop()
        self._semaphore = asyncio.Semaphore(max(1, config.llm_concurrency))
        self._client = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="live-llm", daemon=True)
        self._thread.start()

    def hold_back(self, firings: list[Firing]) -> list[Firing]:
        """The firings that go out now; those of ``llm: confirm`` rules wait for the LLM."""
        rules = {rule.name: rule for rule in self.worker.state.interventions.rules}
        now = []
        for firing in firings:
            rule = rules.get(firing.rule)
            if rule is None or rule.llm != "confirm":
                now.append(firing)
            elif self._pending >= self.config.llm_max_pending:
                firing.fallback_reason = "llm_busy"
                self.counts["fallback"] += 1
                now.append(firing)
            else:
                with self.worker.lock:
                    conversation = self.worker.state.conversations.get(firing.conversation_id)
                    messages = [(m.role, m.text) for m in conversation.last_messages] if conversation else []
                self._pending += 1
                asyncio.run_coroutine_threadsafe(self._check(firing, rule, messages), self._loop)
        return now

    async def _check(self, firing: Firing, rule, messages) -> None:
        from convo_warehouse.lib.classify.llm import TranscriptItem

        try:
            if self._client is None:
                self._client = self.classifier._client()
            async with self._semaphore:
                result = await asyncio.wait_for(
                    self.classifier.classify_with_client(
                        self._client, [TranscriptItem(firing.conversation_id, firing.key, messages)]),
                    self.config.llm_timeout)
            labels, error = result[0].labels, result[0].error
        except Exception as failure:  # a timeout or anything else: the rules decide
            labels, error = None, f"{type(failure).__name__}: {failure}"[:200]
        self.counts["checked"] += 1
        self._pending -= 1
        if labels is None:
            firing.fallback_reason = f"llm_failed: {error}"
            self.counts["fallback"] += 1
            self.worker.fire_later([firing])
            return
        with self.worker.lock:
            conversation = self.worker.state.conversations.get(firing.conversation_id)
            holds = False
            if conversation is not None:
                view = conversation.view()
                stages = frozenset(stage for stage, reached in labels.items() if reached)
                holds = rule.node.evaluate(Conversation(view.events, view.bits, view.turns, stages)).holds
                if not holds:
                    conversation.pending.discard(firing.rule)
                    conversation.declined.add(firing.rule)
        if holds:
            firing.classifier = "llm"
            self.counts["confirmed"] += 1
            self.worker.fire_later([firing])
        else:
            self.counts["declined"] += 1

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(2)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _serve_reads(worker: LiveWorker, connection, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            if not connection.poll(0.5):
                continue
            number, request = connection.recv()
        except (EOFError, OSError):
            return
        try:
            answer = worker.answer(request)
        except Exception as error:  # a bad request must not end the reads
            log.exception("live state: cannot answer a %r request", request[0] if request else None)
            answer = {"error": str(error)[:300]}
        try:
            connection.send((number, answer))
        except (OSError, ValueError):
            return


def _receive(batches, received: queue.Queue) -> None:
    """Move the collector's batches to ``received``, in a thread of its own.

    A collector killed while it put a batch on the queue leaves part of one in the queue's pipe, and
    reading it then waits for the rest forever, whatever the timeout. Only this thread waits so: the
    main thread, waiting on ``received`` with a timeout, still sees its parent gone and ends, finishing
    its open landing file. This thread stays blocked until the process exits.
    """
    while True:
        try:
            item = batches.get()
        except Exception:  # the queue cannot be read (closed, or a batch it cannot unpickle): end, and be restarted
            log.exception("live state: cannot read the collector's queue; ending")
            item = None
        received.put(item)
        if item is None:
            return


def main(config, batches, connection, queued_bytes) -> None:
    """The worker process: rebuild, then apply batches until told to stop or orphaned."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = LiveWorker(config)
    stop = threading.Event()
    reader = threading.Thread(target=_serve_reads, args=(worker, connection, stop), name="live-reads", daemon=True)
    reader.start()
    # a few batches ahead at most: the collector's queue keeps its bound on what waits
    received: queue.Queue = queue.Queue(maxsize=64)
    threading.Thread(target=_receive, args=(batches, received), name="live-receive", daemon=True).start()
    worker.rebuild()
    next_housekeeping = time.monotonic() + 1.0
    try:
        while True:
            try:
                item = received.get(timeout=0.5)
            except queue.Empty:
                item = ()
            pending = [item] if item else []
            ending = item is None
            while not ending and len(pending) < 64:
                try:
                    more = received.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    ending = True
                else:
                    pending.append(more)
            if pending:
                worker.apply(pending)
                with queued_bytes.get_lock():
                    queued_bytes.value -= sum(len(payload) for payload, _ in pending)
            if ending or os.getppid() != config.parent_pid:
                break
            if time.monotonic() >= next_housekeeping:
                worker.housekeeping()
                next_housekeeping = time.monotonic() + 1.0
    finally:
        worker.close()
        stop.set()
