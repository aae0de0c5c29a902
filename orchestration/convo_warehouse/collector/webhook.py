"""The intervention webhook: a bounded queue and a sender thread with retries.

Each intervention is POSTed as JSON to the configured URL with an
``Idempotency-Key`` header (the same key for every attempt, and the same in
the body), so a receiver that sees a retry after a lost answer can drop it.
429, 5xx, 408 and network errors are retried with exponential backoff and
full jitter (``Retry-After`` honoured as a minimum) up to ``max_attempts``;
other 4xx are not. The queue is bounded: when it is full the intervention is
not sent (counted as ``dropped`` and logged); it is already in the landing
folder either way. Nothing here ever blocks the caller. A few sender threads
(``senders``, each with its own kept-alive connection) deliver at once, so a
slow receiver or a retry's backoff does not hold every later intervention
back; their order of arrival is not guaranteed (the idempotency key is what
identifies one).
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("convo_warehouse.collector.webhook")


@dataclass
class WebhookSettings:
    url: str
    max_queue: int = 10_000
    max_attempts: int = 5
    backoff_base: float = 0.2
    backoff_max: float = 10.0
    timeout: float = 5.0
    headers: dict[str, str] = field(default_factory=dict)
    senders: int = 4


class WebhookSender:
    """Send payloads in the background; ``submit`` returns at once."""

    def __init__(self, settings: WebhookSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        parsed = urllib.parse.urlsplit(settings.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"intervention webhook URL must be http(s)://host[:port]/path, got {settings.url!r}")
        self.settings = settings
        self._parsed = parsed
        self._queue: queue.Queue = queue.Queue(maxsize=settings.max_queue)
        self._sleep = sleep
        self._stop = threading.Event()
        self._local = threading.local()  # each sender thread's connection
        self._counts_lock = threading.Lock()
        self.counts = {"sent": 0, "failed": 0, "retried": 0, "dropped": 0}
        self.on_sent: Callable[[dict, float], None] | None = None  # (payload, first attempt at): latency stats
        self._threads = [threading.Thread(target=self._run, name=f"intervention-webhook-{number}", daemon=True)
                         for number in range(max(1, settings.senders))]
        for thread in self._threads:
            thread.start()

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self.counts[name] += 1

    def submit(self, payload: dict) -> bool:
        try:
            self._queue.put_nowait(payload)
            return True
        except queue.Full:
            self._count("dropped")
            log.warning("intervention webhook queue full (%d): %s for %s not sent", self.settings.max_queue,
                        payload.get("rule"), payload.get("idempotency_key"))
            return False

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued within ``timeout`` seconds, then stop."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        for _thread in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()) + 0.1)

    def _run(self) -> None:
        while not self._stop.is_set():
            payload = self._queue.get()
            try:
                if payload is not None:
                    self._deliver(payload)
            except Exception:  # a bug must not stop later deliveries
                log.exception("intervention webhook: delivery failed unexpectedly")
            finally:
                self._queue.task_done()

    def _deliver(self, payload: dict) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        key = payload.get("idempotency_key", "")
        if self.on_sent is not None:
            self.on_sent(payload, time.time())
        for attempt in range(1, self.settings.max_attempts + 1):
            status, retry_after, error = self._post(body, key)
            if status is not None and 200 <= status < 300:
                self._count("sent")
                return
            retryable = status is None or status in (408, 429) or status >= 500
            if not retryable or attempt == self.settings.max_attempts or self._stop.is_set():
                self._count("failed")
                log.warning("intervention webhook: %s for %s not delivered after %d attempt(s): %s",
                            payload.get("rule"), key, attempt, error or f"HTTP {status}")
                return
            self._count("retried")
            delay = random.uniform(0, min(self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempt - 1)))
            if retry_after is not None:
                delay = min(self.settings.backoff_max, max(delay, retry_after))
            self._sleep(delay)

    def _post(self, body: bytes, key: str) -> tuple[int | None, float | None, str | None]:
        parsed = self._parsed
        path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key, **self.settings.headers}
        for fresh in (False, True):  # a kept-alive connection the server closed: reconnect once
            try:
                connection = self._connect(fresh)
                connection.request("POST", path, body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                retry_after = answer.getheader("Retry-After")
                return answer.status, _seconds(retry_after), None
            except (OSError, http.client.HTTPException) as error:
                self._close_connection()
                if fresh:
                    return None, None, f"{type(error).__name__}: {error}"
        return None, None, "unreachable"

    def _connect(self, fresh: bool) -> http.client.HTTPConnection:
        if fresh:
            self._close_connection()
        connection = getattr(self._local, "connection", None)
        if connection is None:
            parsed = self._parsed
            kind = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
            connection = self._local.connection = kind(parsed.hostname, parsed.port, timeout=self.settings.timeout)
        return connection

    def _close_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
