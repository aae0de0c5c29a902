"""``Tracker``: capture contract events in an application and deliver them.

The caller's thread only builds a small dict and puts it on a bounded queue.
A background thread encodes events, groups them into batches (by count and
bytes), and hands each batch to the transport (the HTTP collector, or a
landing folder). Delivery failures are retried with exponential backoff and
full jitter (``Retry-After`` honoured); what still cannot be delivered goes
to the on-disk spool and is re-sent when the collector answers again. A full
queue spills to the spool too. Nothing is dropped without being counted and
logged.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from convo_warehouse.capture.ids import utc_timestamp, uuid7
from convo_warehouse.capture.spool import Spool
from convo_warehouse.capture.transport import HttpTransport, LandingTransport, SendOutcome

log = logging.getLogger("convo_warehouse.capture")

_STOP = object()


@dataclass(frozen=True)
class CaptureCounters:
    """What the tracker did with the events it was given (events, not batches).

    ``sent``: acknowledged by the collector as stored (accepted or duplicate)
    or written to the landing folder. ``rejected``: refused by the collector's
    validation (reason logged; the collector keeps them too). ``retried``:
    event sends repeated after a retryable failure. ``spooled``: events written
    to the on-disk spool (re-sent later, so they count in ``sent`` then too).
    ``dropped``: given up for good (logged with the reason). ``queued``: in
    memory now.
    """

    sent: int
    accepted: int
    duplicate: int
    rejected: int
    retried: int
    spooled: int
    dropped: int
    queued: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Tracker:
    """Capture contract events and deliver them to a collector or a landing folder.

    Give ``endpoint`` (e.g. ``http://127.0.0.1:8765``; env
    ``CONVO_COLLECTOR_URL``) with ``token`` (env ``CONVO_COLLECTOR_TOKEN``), or
    ``landing_dir`` for batch jobs that write files the loader picks up.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        token: str | None = None,
        landing_dir: Path | str | None = None,
        spool_dir: Path | str | None = None,
        channel: str | None = None,
        batch_size: int = 500,
        batch_bytes: int = 1_000_000,
        flush_interval: float = 1.0,
        queue_size: int = 10_000,
        max_attempts: int = 4,
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        probe_interval: float = 5.0,
        timeout: float = 10.0,
        close_timeout: float = 5.0,
        register_atexit: bool = True,
    ) -> None:
        endpoint = endpoint or (None if landing_dir else os.environ.get("CONVO_COLLECTOR_URL"))
        if bool(endpoint) == bool(landing_dir):
            raise ValueError(
                "Tracker needs exactly one destination: endpoint='http://host:port' of a "
                "collector (or CONVO_COLLECTOR_URL), or landing_dir='data/landing'."
            )
        if landing_dir:
            self._transport: HttpTransport | LandingTransport = LandingTransport(landing_dir)
        else:
            token = token if token is not None else os.environ.get("CONVO_COLLECTOR_TOKEN")
            self._transport = HttpTransport(endpoint, token=token, timeout=timeout)
        # in landing mode the spool sits in a dot-folder the loader never reads
        default_spool = Path(landing_dir) / ".convo_spool" if landing_dir else Path(".convo_spool")
        self.spool = Spool(spool_dir or os.environ.get("CONVO_CAPTURE_SPOOL_DIR") or default_spool)
        self.channel = channel
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.flush_interval = flush_interval
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.probe_interval = probe_interval
        self.close_timeout = close_timeout

        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._counts = dict.fromkeys(
            ("accepted", "duplicate", "rejected", "retried", "spooled", "dropped"), 0
        )
        self._counts_lock = threading.Lock()
        self._closed = False
        self._deadline: float | None = None
        self._down_until = 0.0  # while in the future, batches go straight to the spool
        self._next_spool_check = 0.0  # re-send spooled events (also other processes' leftovers)
        self._in_flight: list[bytes] | None = None  # the batch the sender is delivering
        # close() spools a batch whose send hangs past the deadline; from then on
        # the sender's own spooling of it is skipped (one copy, not two)
        self._flight_lock = threading.Lock()
        self._in_flight_taken = False
        self._thread = threading.Thread(target=self._run, name="convo-capture-sender", daemon=True)
        self._thread.start()
        if register_atexit:
            atexit.register(self.close)

    # --- capture (the caller's thread) -------------------------------------------------

    def track(
        self,
        event_type: str,
        conversation_id: str,
        properties: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        channel: str | None = None,
        timestamp: datetime | float | None = None,
        event_id: str | None = None,
    ) -> str:
        """Capture one event; returns its ``event_id`` (a UUIDv7 unless given)."""
        now_ns = time.time_ns()
        event = {
            "event_id": event_id or uuid7(now_ns),
            "conversation_id": conversation_id,
            "event_type": event_type,
            "timestamp": now_ns if timestamp is None else utc_timestamp(timestamp),
        }
        if user_id is not None:
            event["user_id"] = user_id
        channel = channel or self.channel
        if channel is not None:
            event["channel"] = channel
        if properties:
            event["properties"] = dict(properties)
        if self._closed:
            self._spool_events([event], "tracker already closed")
            return event["event_id"]
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._spool_events([event], "in-memory queue full")
        return event["event_id"]

    @contextmanager
    def conversation(
        self,
        conversation_id: str | None = None,
        *,
        user_id: str | None = None,
        channel: str | None = None,
        start: bool = True,
        **started_properties: Any,
    ) -> Iterator[Conversation]:
        """A conversation scope; records ``conversation_started`` on entry unless ``start=False``.

        With ``start=False`` the conversation is only an interaction until
        ``started()`` is called (e.g. ``initialized()`` when the widget loads,
        ``started()`` when the user engages).
        """
        convo = Conversation(self, conversation_id or str(uuid.uuid4()), user_id, channel)
        if start:
            convo.started(**started_properties)
        yield convo

    def assign_variant(self, test_name: str, conversation_id: str, variants: Sequence[str], **context) -> str:
        """The contract's deterministic variant for this conversation, recorded as an exposure."""
        from convo_warehouse.lib.assignment import assign_variant

        variant = assign_variant(test_name, conversation_id, variants)
        self.track(
            "experiment_exposure",
            conversation_id,
            {"test_name": test_name, "variant": variant},
            **context,
        )
        return variant

    # --- state the application can read ------------------------------------------------

    def counters(self) -> CaptureCounters:
        with self._counts_lock:
            counts = dict(self._counts)
        return CaptureCounters(
            sent=counts["accepted"] + counts["duplicate"],
            queued=self._queue.qsize(),
            **counts,
        )

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver (or spool) everything captured so far; True if done within ``timeout``."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> CaptureCounters:
        """Deliver what is queued within ``timeout`` seconds, spool the rest, stop.

        Registered with ``atexit``, so a normal interpreter exit loses nothing.
        """
        if not self._closed:
            self._closed = True
            timeout = self.close_timeout if timeout is None else timeout
            self._deadline = time.monotonic() + timeout
            try:
                self._queue.put(_STOP, timeout=max(timeout, 0.1))
            except queue.Full:
                pass
            self._thread.join(timeout + 1.0)
            with self._flight_lock:
                in_flight = self._in_flight if self._thread.is_alive() else None
                if in_flight:
                    # the sender is stuck on a send past the deadline: spool its
                    # batch (if the send still succeeds, the collector answers
                    # the spooled copies as duplicates)
                    self._in_flight_taken = True
                    self._spool_lines(in_flight, "send still in progress at close")
            # whatever the sender could not take is spooled, not lost
            leftovers = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, dict):
                    leftovers.append(item)
            self._spool_events(leftovers, "tracker closed before delivery")
            self.spool.close_segment()
            self._transport.close()
            atexit.unregister(self.close)
        return self.counters()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- the sender thread -------------------------------------------------------------

    def _count(self, name: str, amount: int) -> None:
        if amount:
            with self._counts_lock:
                self._counts[name] += amount

    def _spool_events(self, events: list[dict], why: str) -> None:
        if events:
            self._spool_lines([_encode(event) for event in events], why)

    def _spool_lines(self, lines: list[bytes], why: str) -> None:
        if not lines:
            return
        if threading.current_thread() is self._thread:
            with self._flight_lock:
                if not self._in_flight_taken:
                    self._append_to_spool(lines, why)
        else:
            self._append_to_spool(lines, why)

    def _append_to_spool(self, lines: list[bytes], why: str) -> None:
        try:
            self.spool.append(lines)
        except OSError as error:
            log.error("capture: %d event(s) dropped: %s and the spool %s failed: %s",
                      len(lines), why, self.spool.directory, error)
            self._count("dropped", len(lines))
            return
        log.info("capture: %d event(s) spooled to %s (%s)", len(lines), self.spool.directory, why)
        self._count("spooled", len(lines))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, size, waiters = [], 0, []
            wait_until = time.monotonic() + self.flush_interval
            while len(batch) < self.batch_size and size < self.batch_bytes:
                try:
                    item = self._queue.get(timeout=max(0.0, wait_until - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, threading.Event):
                    waiters.append(item)
                    break
                line = _encode(item)
                batch.append(line)
                size += len(line) + 1
            try:
                if batch:
                    self._deliver(batch)
                if not stopping and time.monotonic() >= self._next_spool_check:
                    self._resend_spool()
            except Exception:  # never let the sender die: the app would lose events silently
                log.exception("capture: unexpected error in the sender; batch spooled")
                self._spool_lines(batch, "sender error")
            for waiter in waiters:
                waiter.set()
        # drain what was queued before close(), within the deadline
        remaining = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, dict):
                remaining.append(_encode(item))
            elif isinstance(item, threading.Event):
                item.set()
        for start in range(0, len(remaining), self.batch_size):
            self._deliver(remaining[start : start + self.batch_size])

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _deliver(self, lines: list[bytes]) -> bool:
        """Send one batch, retrying; spool it if that fails. True if delivered."""
        self._in_flight = lines
        try:
            return self._deliver_batch(lines)
        finally:
            self._in_flight = None

    def _deliver_batch(self, lines: list[bytes]) -> bool:
        if time.monotonic() < self._down_until or self._past_deadline():
            self._spool_lines(lines, "collector unavailable")
            return False
        attempt = 0
        while True:
            outcome = self._transport.send(lines)
            if outcome.kind == "delivered":
                self._record(lines, outcome)
                self._down_until = 0.0
                return True
            if outcome.kind == "too_large" and len(lines) > 1:
                middle = len(lines) // 2
                first = self._deliver_batch(lines[:middle])
                return self._deliver_batch(lines[middle:]) and first
            if outcome.kind in ("too_large", "fatal"):
                log.error("capture: %d event(s) dropped, the collector refused the batch: %s",
                          len(lines), outcome.message)
                self._count("dropped", len(lines))
                return False
            if outcome.kind == "unauthorized":
                log.error("capture: collector refused the token (%s); events spooled until it "
                          "accepts (set CONVO_COLLECTOR_TOKEN)", outcome.message)
                break
            attempt += 1
            if attempt >= self.max_attempts:
                log.warning("capture: collector unavailable after %d attempts (%s)", attempt,
                            outcome.message)
                break
            delay = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** attempt))
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, self.backoff_max * 6))
            if self._deadline is not None and time.monotonic() + delay >= self._deadline:
                break
            self._count("retried", len(lines))
            time.sleep(delay)
        self._down_until = time.monotonic() + self.probe_interval
        self._next_spool_check = self._down_until
        self._spool_lines(lines, "collector unavailable")
        return False

    def _record(self, lines: list[bytes], outcome: SendOutcome) -> None:
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for line, result in zip(lines, outcome.results):
            status = result.get("status")
            if status in counts:
                counts[status] += 1
            if status == "rejected":
                log.warning("capture: event rejected by the collector: %s (%s): %s",
                            result.get("reason"), result.get("detail"), line[:300].decode(errors="replace"))
        if len(outcome.results) != len(lines):
            log.warning("capture: the collector answered %d results for %d events",
                        len(outcome.results), len(lines))
        for name, amount in counts.items():
            self._count(name, amount)

    def _resend_spool(self) -> None:
        """Re-send spooled segments (ours and those of ended processes) while delivery works."""
        self._next_spool_check = time.monotonic() + self.probe_interval
        if not self.spool.has_segments():
            return
        for segment in self.spool.claim():
            lines = segment.read_lines()
            delivered = True
            for start in range(0, len(lines), self.batch_size):
                chunk = lines[start : start + self.batch_size]
                if not self._deliver_from_spool(chunk):
                    delivered = False
                    break
            if delivered:
                segment.delivered()
                log.info("capture: re-sent %d spooled event(s) from %s", len(lines), segment.path)
            else:
                segment.release()
                return

    def _deliver_from_spool(self, lines: list[bytes]) -> bool:
        """One attempt for spooled events: on failure they simply stay in their segment."""
        outcome = self._transport.send(lines)
        if outcome.kind == "delivered":
            self._record(lines, outcome)
            self._down_until = 0.0
            return True
        if outcome.kind == "too_large" and len(lines) > 1:
            middle = len(lines) // 2
            return self._deliver_from_spool(lines[:middle]) and self._deliver_from_spool(lines[middle:])
        if outcome.kind in ("too_large", "fatal"):
            log.error("capture: %d spooled event(s) dropped, the collector refused them: %s",
                      len(lines), outcome.message)
            self._count("dropped", len(lines))
            return True
        self._down_until = time.monotonic() + self.probe_interval
        self._next_spool_check = self._down_until
        return False


def _encode(event: dict) -> bytes:
    """One event as compact JSON; a capture-time nanosecond clock becomes UTC ISO text."""
    stamp = event["timestamp"]
    if isinstance(stamp, int):
        seconds, nanos = divmod(stamp, 1_000_000_000)
        event["timestamp"] = (
            datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{nanos // 1000:06d}Z"
        )
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


class Conversation:
    """Events of one conversation; one method per canonical event type.

    User turns are counted: ``user_message`` carries ``turn`` 1, 2, ...;
    agent messages, tools and fallbacks carry the current turn.
    """

    def __init__(self, tracker: Tracker, conversation_id: str, user_id: str | None,
                 channel: str | None) -> None:
        self.tracker = tracker
        self.conversation_id = conversation_id
        self.user_id = user_id
        self.channel = channel
        self.turn = 0

    def track(self, event_type: str, properties: Mapping[str, Any] | None = None, **kwargs) -> str:
        """Any event type (canonical or an alias) with arbitrary properties."""
        clean = {key: value for key, value in (properties or {}).items() if value is not None}
        return self.tracker.track(
            event_type, self.conversation_id, clean,
            user_id=kwargs.pop("user_id", self.user_id),
            channel=kwargs.pop("channel", self.channel), **kwargs,
        )

    def initialized(self, **properties: Any) -> str:
        """The user had the chance to talk to the agent (no engagement yet)."""
        return self.track("interaction_initialized", properties)

    def started(self, **properties: Any) -> str:
        """The conversation began (``device``, ``source``, ``language``, ``agent_id``, ...)."""
        return self.track("conversation_started", properties)

    def user_message(self, content: str | None = None, **properties: Any) -> str:
        self.turn += 1
        props = {"content": content, "turn": self.turn,
                 "message_length": len(content) if content is not None else None}
        return self.track("user_message", {**props, **properties})

    def agent_message(
        self,
        content: str | None = None,
        *,
        model: str | None = None,
        latency_ms: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        **properties: Any,
    ) -> str:
        props = {
            "content": content, "turn": self.turn, "model": model, "latency_ms": latency_ms,
            "input_tokens": input_tokens, "output_tokens": output_tokens,
            "response_length": len(content) if content is not None else None,
        }
        return self.track("agent_message", {**props, **properties})

    def tool_called(self, tool_name: str, **properties: Any) -> str:
        return self.track("tool_called", {"tool_name": tool_name, "turn": self.turn, **properties})

    def fallback(self, topic: str | None = None, **properties: Any) -> str:
        return self.track("fallback_triggered", {"topic": topic, "turn": self.turn, **properties})

    def handoff(self, reason: str | None = None, **properties: Any) -> str:
        return self.track("handoff_requested", {"reason": reason, **properties})

    def feedback(self, rating: str | int, comment: str | None = None, **properties: Any) -> str:
        """``rating``: ``positive`` / ``negative`` or an integer 1..5."""
        return self.track("feedback_received", {"rating": rating, "comment": comment, **properties})

    def conversion(self, goal: str | None = None, **properties: Any) -> str:
        return self.track("conversion", {"goal": goal, **properties})

    def stage_reached(self, funnel: str, stage: str, **properties: Any) -> str:
        return self.track("stage_reached", {"funnel": funnel, "stage": stage, **properties})

    def exposure(self, test_name: str, variant: str) -> str:
        return self.track("experiment_exposure", {"test_name": test_name, "variant": variant})

    def assign_variant(self, test_name: str, variants: Sequence[str]) -> str:
        """The contract's deterministic variant, recorded as an ``experiment_exposure``."""
        return self.tracker.assign_variant(
            test_name, self.conversation_id, variants, user_id=self.user_id, channel=self.channel
        )

    def button_clicked(self, button: str, **properties: Any) -> str:
        return self.track("button_clicked", {"button": button, **properties})

    def flow_started(self, flow_name: str) -> str:
        return self.track("flow_started", {"flow_name": flow_name})

    def flow_completed(self, flow_name: str) -> str:
        return self.track("flow_completed", {"flow_name": flow_name})

    def flow_abandoned(self, flow_name: str) -> str:
        return self.track("flow_abandoned", {"flow_name": flow_name})

    def completed(self, total_turns: int | None = None) -> str:
        """The agent judged the conversation complete (``total_turns`` defaults to the turns seen)."""
        return self.track("conversation_completed",
                          {"total_turns": self.turn if total_turns is None else total_turns})

    def abandoned(self, abandoned_at_turn: int | None = None) -> str:
        return self.track("conversation_abandoned",
                          {"abandoned_at_turn": self.turn if abandoned_at_turn is None else abandoned_at_turn})

    def ended(self, reason: str | None = None) -> str:
        return self.track("conversation_ended", {"reason": reason})
