"""The intervention webhook: a bounded queue and sender threads with retries, signed requests.

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

**Signed** (as Stripe and GitHub sign theirs): with a secret configured
(``CONVO_INTERVENTION_WEBHOOK_SECRET``), every attempt carries
``Convo-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256 with the secret over ``<t>.`` followed by the exact body bytes;
several secrets (comma-separated, while rotating) give one ``v1`` each. A
receiver recomputes it, compares in constant time and refuses a ``t`` more
than a few minutes old (``verify_signature``). ``Authorization`` can be set
too (``CONVO_INTERVENTION_WEBHOOK_AUTHORIZATION``); ``user:password@`` in the
URL becomes HTTP Basic. The URL must be https unless its host is loopback or
plain http is allowed explicitly; ``check_webhook_url`` says what is wrong
with one, and every message names the URL with its password and query values
redacted (``redact_url``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import queue
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from convo_warehouse.lib.access import is_loopback

log = logging.getLogger("convo_warehouse.collector.webhook")

SIGNATURE_HEADER = "Convo-Signature"
SIGNATURE_TOLERANCE = 300  # seconds a receiver should accept a signature's timestamp for


class WebhookConfigError(ValueError):
    """A webhook setting that cannot work; the message names the setting (and no secret)."""


def redact_url(url: str) -> str:
    """The URL with its password and every query value replaced by ``***`` (for messages and logs)."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
        query = "&".join(f"{pair.split('=', 1)[0]}=***" if pair else pair for pair in parts.query.split("&"))
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "(an unreadable URL)"


def check_webhook_url(url: str, allow_http: bool = False) -> urllib.parse.SplitResult:
    """The URL, parsed, or ``WebhookConfigError`` saying what is wrong (the URL redacted)."""
    shown = redact_url(url)
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port  # raises on a port that is no number
    except ValueError as error:
        raise WebhookConfigError(f"intervention webhook URL {shown} cannot be read ({error}): give "
                                 "https://host[:port]/path") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WebhookConfigError(f"intervention webhook URL {shown} must be https://host[:port]/path")
    if parsed.scheme == "http" and not is_loopback(parsed.hostname) and not allow_http:
        raise WebhookConfigError(
            f"intervention webhook URL {shown} is plain http to a host other than loopback: interventions "
            "would cross the network readable by anyone on the way; use https, or allow it explicitly with "
            "--webhook-allow-http (CONVO_INTERVENTION_WEBHOOK_ALLOW_HTTP=1)")
    if port == 0:
        raise WebhookConfigError(f"intervention webhook URL {shown} has port 0")
    return parsed


def sign(secrets: Iterable[str], body: bytes, timestamp: int) -> str:
    """The ``Convo-Signature`` value: ``t=<timestamp>`` and one ``v1=<hex>`` per secret."""
    signed = str(timestamp).encode("ascii") + b"." + body
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}" for secret in secrets]
    return ",".join(parts)


def verify_signature(secret: str, header: str, body: bytes, now: float | None = None,
                     tolerance: float = SIGNATURE_TOLERANCE) -> bool:
    """A receiver's check: one ``v1`` of ``header`` is the HMAC of ``body`` with ``secret``, and its
    timestamp is within ``tolerance`` seconds of now (an old request replayed fails)."""
    fields = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for name, value in fields if name.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign([secret], body, timestamp).split(",")[1][3:]
    return any(hmac.compare_digest(expected, value.strip()) for name, value in fields if name.strip() == "v1")


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
    secrets: tuple[str, ...] = ()
    authorization: str | None = None
    allow_http: bool = False


class WebhookSender:
    """Send payloads in the background; ``submit`` returns at once."""

    def __init__(self, settings: WebhookSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        parsed = check_webhook_url(settings.url, settings.allow_http)
        self.settings = settings
        self._parsed = parsed
        self.shown_url = redact_url(settings.url)
        self._auth_headers = {}
        if settings.authorization:
            self._auth_headers["Authorization"] = settings.authorization
        elif parsed.username is not None:
            credentials = f"{urllib.parse.unquote(parsed.username)}:{urllib.parse.unquote(parsed.password or '')}"
            self._auth_headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
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
        headers = {"Content-Type": "application/json", "Idempotency-Key": key, **self.settings.headers,
                   **self._auth_headers}
        if self.settings.secrets:
            # signed at each attempt: a retry minutes later still carries a fresh timestamp
            headers[SIGNATURE_HEADER] = sign(self.settings.secrets, body, int(time.time()))
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
                    # the error's text names a host and port at most (never the URL's credentials)
                    return None, None, f"{type(error).__name__}: {str(error)[:200]} ({self.shown_url})"
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
