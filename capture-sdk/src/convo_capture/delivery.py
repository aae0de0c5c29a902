"""The delivery engine behind ``Tracker``: a queue, a sender thread, retries, the spool.

The caller's thread hands over events already encoded (``encode_event``: one
bad value can never spoil a batch). The sender thread groups them into batches
(by count and bytes) and hands each batch to the transport (the HTTP
collector, or a landing folder):

* 429, 5xx, 408 and network errors are retried with exponential backoff and
  full jitter (``Retry-After`` honoured); what still cannot be delivered goes
  to the on-disk spool and is re-sent when the collector answers again.
* 413 splits the batch in halves; so does a 400 (the collector could not read
  the batch): the halves are sent on their own until the offending event is
  alone, and only that one is dropped.
* 401/403 keep the events in the spool (fix the token and they are delivered).
* A full queue spills to the spool; a full spool drops, counted and logged.
* The sender is restarted if it ever dies (its batch is spooled first).
* After ``os.fork`` the child gets its own queue, thread, spool segment and
  connection (the parent keeps sending what it had queued).

Nothing is dropped without being counted and logged, and no log line holds
event content (ids, reasons and counts only).
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import random
import threading
import time
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from convo_capture.spool import Spool, SpoolFull
from convo_capture.transport import SendOutcome

log = logging.getLogger("convo_capture")

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
    memory now. ``sanitized``: events sent with a value replaced (NaN or
    Infinity as null, a lone surrogate as U+FFFD). ``sender_restarts``: times
    the sender thread was found dead and started again.
    """

    sent: int
    accepted: int
    duplicate: int
    rejected: int
    retried: int
    spooled: int
    dropped: int
    queued: int
    sanitized: int = 0
    sender_restarts: int = 0

    def as_dict(self) -> Dict[str, int]:
        return asdict(self)


class EncodeError(ValueError):
    """An event that cannot be written as JSON at all (a circular reference, nesting too deep)."""


def encode_event(event: Dict[str, Any]) -> Tuple[bytes, bool]:
    """One event as compact UTF-8 JSON, and whether a value had to be replaced.

    NaN and Infinity (not JSON) become null; a lone surrogate (not UTF-8)
    becomes U+FFFD; anything else JSON cannot hold is written as its ``str``.
    """
    sanitized = False
    try:
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError as error:
        if "Circular" in str(error):
            raise EncodeError(str(error)) from error
        sanitized = True
        try:
            text = json.dumps(_finite(event), ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                              default=str)
        except (ValueError, RecursionError) as again:
            raise EncodeError(str(again)) from again
    except RecursionError as error:
        raise EncodeError("nested too deep to encode") from error
    try:
        return text.encode("utf-8"), sanitized
    except UnicodeEncodeError:
        # a lone surrogate: pairs are rejoined, lone halves become U+FFFD
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed.encode("utf-8", "replace"), True


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


_ENGINES: "weakref.WeakSet[DeliveryEngine]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for engine in list(_ENGINES):
        engine.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class DeliveryEngine:
    """Queue -> batches -> transport, with retries and the spool (see the module docstring)."""

    def __init__(
        self,
        transport,
        spool: Spool,
        *,
        batch_size: int,
        batch_bytes: int,
        flush_interval: float,
        queue_size: int,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        probe_interval: float,
        on_error: Optional[Callable[[str, int, str], None]] = None,
    ) -> None:
        self.transport = transport
        self.spool = spool
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.flush_interval = flush_interval
        self.queue_size = queue_size
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.probe_interval = probe_interval
        self.on_error = on_error
        self._counts = dict.fromkeys(
            ("accepted", "duplicate", "rejected", "retried", "spooled", "dropped", "sanitized",
             "sender_restarts"), 0)
        self._fresh_state()
        _ENGINES.add(self)

    def _fresh_state(self) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self._counts_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self.closed = False
        self._deadline: Optional[float] = None
        self._down_until = 0.0  # while in the future, batches go straight to the spool
        self._next_spool_check = 0.0  # re-send spooled events (also other processes' leftovers)
        self._in_flight: Optional[List[bytes]] = None  # the batch the sender is delivering
        # close() spools a batch whose send hangs past the deadline; from then on
        # the sender's own spooling of it is skipped (one copy, not two)
        self._flight_lock = threading.Lock()
        self._in_flight_taken = False
        self._thread = self._new_thread()
        self._thread.start()

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._run, name="convo-capture-sender", daemon=True)

    def after_fork_in_child(self) -> None:
        """In a forked child: the parent's queue, thread and connection are not ours."""
        if self.closed:
            return
        self.transport.forget_connection()
        self.spool.after_fork_in_child()
        self._counts = dict.fromkeys(self._counts, 0)
        self._fresh_state()

    # --- the caller's thread -----------------------------------------------------------

    def put(self, line: bytes) -> None:
        if self.closed:
            self._spool_lines([line], "tracker already closed")
            return
        if not self._thread.is_alive():
            self._restart_sender()
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._spool_lines([line], "in-memory queue full")

    def _restart_sender(self) -> None:
        with self._start_lock:
            if self._thread.is_alive() or self.closed:
                return
            with self._flight_lock:
                lost, self._in_flight = self._in_flight, None
            if lost:
                self._spool_lines(lost, "sender stopped while sending")
            log.error("capture: the sender thread had stopped; started a new one")
            self.count("sender_restarts", 1)
            self._thread = self._new_thread()
            self._thread.start()

    def count(self, name: str, amount: int) -> None:
        if amount:
            with self._counts_lock:
                self._counts[name] += amount

    def counters(self) -> CaptureCounters:
        with self._counts_lock:
            counts = dict(self._counts)
        return CaptureCounters(sent=counts["accepted"] + counts["duplicate"], queued=self._queue.qsize(), **counts)

    def flush(self, timeout: float) -> bool:
        if not self._thread.is_alive() and not self.closed:
            self._restart_sender()
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float) -> None:
        if self.closed:
            return
        self.closed = True
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
                self._append_to_spool(in_flight, "send still in progress at close")
        # whatever the sender could not take is spooled, not lost
        leftovers = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, bytes):
                leftovers.append(item)
        self._spool_lines(leftovers, "tracker closed before delivery")
        self.spool.close_segment()
        self.transport.close()

    # --- the sender thread -------------------------------------------------------------

    def _drop(self, count: int, why: str) -> None:
        self.count("dropped", count)
        if self.on_error is not None:
            try:
                self.on_error("dropped", count, why)
            except Exception:
                log.exception("capture: the on_error callback failed")

    def _spool_lines(self, lines: List[bytes], why: str) -> None:
        if not lines:
            return
        if threading.current_thread() is self._thread:
            with self._flight_lock:
                if not self._in_flight_taken:
                    self._append_to_spool(lines, why)
        else:
            self._append_to_spool(lines, why)

    def _append_to_spool(self, lines: List[bytes], why: str) -> None:
        try:
            self.spool.append(lines)
        except SpoolFull as error:
            log.warning("capture: %d event(s) dropped: %s and %s", error.dropped, why, error)
            self.count("spooled", len(lines) - error.dropped)
            self._drop(error.dropped, f"{why}; {error}")
            return
        except OSError as error:
            log.error("capture: %d event(s) dropped: %s and the spool %s failed: %s",
                      len(lines), why, self.spool.directory, error)
            self._drop(len(lines), f"{why}; spool failed: {error}")
            return
        log.info("capture: %d event(s) spooled to %s (%s)", len(lines), self.spool.directory, why)
        self.count("spooled", len(lines))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: List[bytes] = []
            size, waiters = 0, []
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
                batch.append(item)
                size += len(item) + 1
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
            if isinstance(item, bytes):
                remaining.append(item)
            elif isinstance(item, threading.Event):
                item.set()
        for start in range(0, len(remaining), self.batch_size):
            self._deliver(remaining[start : start + self.batch_size])

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _deliver(self, lines: List[bytes]) -> bool:
        """Send one batch, retrying; spool it if that fails. True if delivered."""
        self._in_flight = lines
        try:
            return self._deliver_batch(lines)
        finally:
            self._in_flight = None

    def _deliver_batch(self, lines: List[bytes]) -> bool:
        if time.monotonic() < self._down_until or self._past_deadline():
            self._spool_lines(lines, "collector unavailable")
            return False
        attempt = 0
        while True:
            outcome = self.transport.send(lines)
            settled = self._settle(lines, outcome, self._deliver_batch)
            if settled is not None:
                return settled
            if outcome.kind == "unauthorized":
                log.error("capture: collector refused the token (%s); events spooled until it "
                          "accepts (set CONVO_COLLECTOR_TOKEN)", outcome.message[:300])
                break
            attempt += 1
            if attempt >= self.max_attempts:
                log.warning("capture: collector unavailable after %d attempts (%s)", attempt,
                            outcome.message[:300])
                break
            delay = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** attempt))
            if outcome.retry_after is not None:
                delay = max(delay, min(outcome.retry_after, self.backoff_max * 6))
            if self._deadline is not None and time.monotonic() + delay >= self._deadline:
                break
            self.count("retried", len(lines))
            time.sleep(delay)
        self._down_until = time.monotonic() + self.probe_interval
        self._next_spool_check = self._down_until
        self._spool_lines(lines, "collector unavailable")
        return False

    def _settle(self, lines: List[bytes], outcome: SendOutcome,
                send: Callable[[List[bytes]], bool]) -> Optional[bool]:
        """What the collector's answer settles, the same for fresh and spooled events.

        True: every event is accounted for (delivered, or one refused event dropped
        and counted). None: nothing is settled (retry or spool). A refused batch
        (413: too big; 400: something in it cannot be read) is halved and each half
        sent again with ``send``: the halves find the offending event without
        dropping the others.
        """
        if outcome.kind == "delivered":
            self._record(lines, outcome)
            self._down_until = 0.0
            return True
        if outcome.kind not in ("too_large", "fatal"):
            return None
        if len(lines) > 1:
            middle = len(lines) // 2
            first = send(lines[:middle])
            return send(lines[middle:]) and first
        log.error("capture: 1 event dropped, the collector refused it: %s", outcome.message[:300])
        self._drop(1, f"refused by the collector: {outcome.message[:300]}")
        return True

    def _record(self, lines: List[bytes], outcome: SendOutcome) -> None:
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for result in outcome.results:
            status = result.get("status")
            if status in counts:
                counts[status] += 1
            if status == "rejected":
                # ids and reasons only: event content never goes to the log
                log.warning("capture: event %s rejected by the collector: %s (%s)", result.get("event_id"),
                            result.get("reason"), str(result.get("detail"))[:200])
                if self.on_error is not None:
                    try:
                        self.on_error("rejected", 1, f"{result.get('reason')}: {result.get('detail')}")
                    except Exception:
                        log.exception("capture: the on_error callback failed")
        if len(outcome.results) != len(lines):
            log.warning("capture: the collector answered %d results for %d events",
                        len(outcome.results), len(lines))
        for name, amount in counts.items():
            self.count(name, amount)

    def _resend_spool(self) -> None:
        """Re-send spooled segments (ours and those of ended processes) while delivery works."""
        self._next_spool_check = time.monotonic() + self.probe_interval
        if not self.spool.has_segments():
            return
        for segment in self.spool.claim():
            if self.spool.is_expired(segment):
                lost = segment.count_lines()
                log.warning("capture: %d spooled event(s) dropped: %s is older than the spool's %g s bound",
                            lost, segment.path.name, self.spool.max_age)
                self._drop(lost, "spooled longer than the spool's age bound")
                segment.delivered()
                continue
            delivered, sent = True, 0
            for chunk in segment.batches(self.batch_size):
                if not self._deliver_from_spool(chunk):
                    delivered = False
                    break
                sent += len(chunk)
            if delivered:
                segment.delivered()
                log.info("capture: re-sent %d spooled event(s) from %s", sent, segment.path)
            else:
                segment.release()
                return

    def _deliver_from_spool(self, lines: List[bytes]) -> bool:
        """One attempt for spooled events: on failure they simply stay in their segment."""
        outcome = self.transport.send(lines)
        settled = self._settle(lines, outcome, self._deliver_from_spool)
        if settled is not None:
            return settled
        self._down_until = time.monotonic() + self.probe_interval
        self._next_spool_check = self._down_until
        return False
