"""``Tracker``: capture contract events in an application and deliver them.

The caller's thread builds the event, encodes it (so one bad value can never
spoil a batch: NaN and Infinity become null, a lone surrogate U+FFFD, each
counted as ``sanitized``) and puts it on a bounded queue. Delivery (the sender
thread, retries, the spool) is ``convo_capture.delivery``.

Switches: ``enabled=False`` records nothing; ``sample_rate`` keeps that share
of conversations (decided by the conversation id, so a conversation is kept
or left out whole); ``default_properties`` (and ``environment``, ``release``,
``agent_id``) are added to every event's properties; ``on_error(kind, count,
message)`` is called for events dropped or rejected.

A ``SIGTERM`` to a process whose SIGTERM is not handled by anyone else closes
every tracker first (what is queued is sent within ``close_timeout``, the rest
spooled), then the process ends as SIGTERM would have ended it.
"""

from __future__ import annotations

import atexit
import contextvars
import hashlib
import logging
import os
import signal
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Union

from convo_capture.assignment import assign_variant as _assign_variant
from convo_capture.delivery import CaptureCounters, DeliveryEngine, EncodeError, encode_event
from convo_capture.ids import utc_timestamp, uuid7
from convo_capture.spool import Spool
from convo_capture.transport import HttpTransport, LandingTransport

log = logging.getLogger("convo_capture")

_current: contextvars.ContextVar[Optional[Conversation]] = contextvars.ContextVar(
    "convo_capture_conversation", default=None)


def current_conversation() -> Optional[Conversation]:
    """The conversation of the enclosing ``tracker.conversation()`` block (or ``with_conversation``)."""
    return _current.get()


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
        enabled: bool = True,
        sample_rate: float = 1.0,
        default_properties: Mapping[str, Any] | None = None,
        environment: str | None = None,
        release: str | None = None,
        agent_id: str | None = None,
        on_error: Callable[[str, int, str], None] | None = None,
        spool_max_bytes: int = 100 * 1024 * 1024,
        spool_max_age: float = 7 * 24 * 3600.0,
        file_mode: int = 0o600,
        handle_sigterm: bool = True,
    ) -> None:
        self.enabled = enabled
        self.channel = channel
        self.sample_rate = sample_rate
        self.close_timeout = close_timeout
        self.default_properties = {key: value for key, value in {
            "environment": environment, "release": release, "agent_id": agent_id,
            **(default_properties or {})}.items() if value is not None}
        self._turns: OrderedDict[str, int] = OrderedDict()  # conversation id -> user turns seen
        self._turns_lock = threading.Lock()
        _ALL_TRACKERS.add(self)
        self._engine: DeliveryEngine | None = None
        if not enabled:
            return
        endpoint = endpoint or (None if landing_dir else os.environ.get("CONVO_COLLECTOR_URL"))
        if bool(endpoint) == bool(landing_dir):
            raise ValueError(
                "Tracker needs exactly one destination: endpoint='http://host:port' of a "
                "collector (or CONVO_COLLECTOR_URL), or landing_dir='data/landing'."
            )
        if landing_dir:
            transport: Union[HttpTransport, LandingTransport] = LandingTransport(landing_dir, file_mode=file_mode)
        else:
            token = token if token is not None else os.environ.get("CONVO_COLLECTOR_TOKEN")
            transport = HttpTransport(endpoint, token=token, timeout=timeout)
        # in landing mode the spool sits in a dot-folder the loader never reads
        default_spool = Path(landing_dir) / ".convo_spool" if landing_dir else Path(".convo_spool")
        self.spool = Spool(spool_dir or os.environ.get("CONVO_CAPTURE_SPOOL_DIR") or default_spool,
                           max_bytes=spool_max_bytes, max_age=spool_max_age, file_mode=file_mode)
        self._engine = DeliveryEngine(
            transport, self.spool, batch_size=batch_size, batch_bytes=batch_bytes,
            flush_interval=flush_interval, queue_size=queue_size, max_attempts=max_attempts,
            backoff_base=backoff_base, backoff_max=backoff_max, probe_interval=probe_interval,
            on_error=on_error,
        )
        self._on_error = on_error
        if register_atexit:
            atexit.register(self.close)
        if handle_sigterm:
            _close_on_sigterm(self)

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
        event_id = event_id or uuid7(now_ns)
        engine = self._engine
        if engine is None or not self._sampled(conversation_id):
            return event_id
        event = {
            "event_id": event_id,
            "conversation_id": conversation_id,
            "event_type": event_type,
            "timestamp": _nanos_text(now_ns) if timestamp is None else utc_timestamp(timestamp),
        }
        if user_id is not None:
            event["user_id"] = user_id
        channel = channel or self.channel
        if channel is not None:
            event["channel"] = channel
        if properties or self.default_properties:
            event["properties"] = {**self.default_properties, **(properties or {})}
        try:
            line, sanitized = encode_event(event)
        except EncodeError as error:
            log.error("capture: event %s (%s) dropped: it cannot be written as JSON (%s)",
                      event_id, event_type, error)
            engine.count("dropped", 1)
            if self._on_error is not None:
                self._on_error("dropped", 1, f"cannot be written as JSON: {error}")
            return event_id
        if sanitized:
            engine.count("sanitized", 1)
        engine.put(line)
        return event_id

    def _sampled(self, conversation_id: str) -> bool:
        if self.sample_rate >= 1.0:
            return True
        digest = hashlib.sha256(str(conversation_id).encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") < self.sample_rate * 2**64

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
        ``started()`` when the user engages). Re-entering a conversation this
        tracker has seen (a stateless handler called once per message)
        continues its turns and does not record a second start. Inside the
        block, ``current_conversation()`` returns it.
        """
        conversation_id = conversation_id or str(uuid.uuid4())
        seen = self._seen(conversation_id)
        convo = Conversation(self, conversation_id, user_id, channel)
        if start and not seen:
            convo.started(**started_properties)
        token = _current.set(convo)
        try:
            yield convo
        finally:
            _current.reset(token)

    def _seen(self, conversation_id: str) -> bool:
        with self._turns_lock:
            if conversation_id in self._turns:
                self._turns.move_to_end(conversation_id)
                return True
            self._turns[conversation_id] = 0
            while len(self._turns) > 100_000:
                self._turns.popitem(last=False)
            return False

    def _turn(self, conversation_id: str, advance: bool) -> int:
        with self._turns_lock:
            turn = self._turns.get(conversation_id, 0) + (1 if advance else 0)
            self._turns[conversation_id] = turn
            return turn

    def assign_variant(self, test_name: str, conversation_id: str, variants: Sequence[str], **context) -> str:
        """The contract's deterministic variant for this conversation, recorded as an exposure."""
        variant = _assign_variant(test_name, conversation_id, variants)
        self.track(
            "experiment_exposure",
            conversation_id,
            {"test_name": test_name, "variant": variant},
            **context,
        )
        return variant

    # --- state the application can read ------------------------------------------------

    def counters(self) -> CaptureCounters:
        if self._engine is None:
            return CaptureCounters(0, 0, 0, 0, 0, 0, 0, 0)
        return self._engine.counters()

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver (or spool) everything captured so far; True if done within ``timeout``."""
        return True if self._engine is None else self._engine.flush(timeout)

    def close(self, timeout: float | None = None) -> CaptureCounters:
        """Deliver what is queued within ``timeout`` seconds, spool the rest, stop.

        Registered with ``atexit``, so a normal interpreter exit loses nothing.
        """
        if self._engine is not None and not self._engine.closed:
            self._engine.close(self.close_timeout if timeout is None else timeout)
            atexit.unregister(self.close)
        return self.counters()

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _nanos_text(now_ns: int) -> str:
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    return (datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{nanos // 1000:06d}Z")


_ALL_TRACKERS: "weakref.WeakSet[Tracker]" = weakref.WeakSet()
_SIGTERM_TRACKERS: "weakref.WeakSet[Tracker]" = weakref.WeakSet()


def _new_locks_in_child() -> None:
    # a lock held by another thread at fork time would never be released in the child
    for tracker in list(_ALL_TRACKERS):
        tracker._turns_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_locks_in_child)
_sigterm_installed = False


def _close_on_sigterm(tracker: Tracker) -> None:
    """Close trackers on SIGTERM when nobody else handles it (then end as SIGTERM does)."""
    global _sigterm_installed
    _SIGTERM_TRACKERS.add(tracker)
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # the application (or its server) handles SIGTERM; atexit still runs on its exit
    signal.signal(signal.SIGTERM, _on_sigterm)
    _sigterm_installed = True


def _on_sigterm(signum, frame) -> None:
    for tracker in list(_SIGTERM_TRACKERS):
        try:
            tracker.close()
        except Exception:
            log.exception("capture: closing a tracker on SIGTERM failed")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


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
        self.turn = tracker._turn(conversation_id, advance=False)  # turns seen before, by this tracker

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
        self.turn = self.tracker._turn(self.conversation_id, advance=True)
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
