"""Limits every server of ours enforces per client before the app sees a request (collector, read API).

uvicorn alone cannot bound clients that never finish their headers: its
keep-alive timer is only armed after a response and is cancelled by every
byte received, a connection that has sent nothing has no timer at all, and
its ``limit_concurrency`` counts such connections, so 257 idle sockets made
every real request 503 (issue 47). httptools has no bound on header size
either. Other ASGI servers on PyPI have a header-read timeout (hypercorn's
and granian's, for instance), but would replace the server the collector's
throughput was measured and tuned on; the fault is one missing timer, so
this module keeps uvicorn and its httptools protocol and adds, in a
subclass of that protocol (``guarded_protocol``), what a server on a hostile
network needs:

- **header deadline**: a connection must send a complete request head
  within ``header_timeout`` seconds of connecting, or of the first byte of
  its next request on a kept-alive connection; otherwise 408 and closed. A
  client dripping one byte a second is closed as surely as an idle one.
  (Idle kept-alive connections are still closed by uvicorn after
  ``timeout_keep_alive``.)
- **header size**: more than ``max_header_bytes`` before the head is
  complete: 431 and closed.
- **connections**: at most ``max_connections_per_client`` per client address
  and ``max_connections`` in all; at the total limit a new connection
  replaces the oldest one still waiting for its request head (so idle
  sockets can never shut out working clients); a refused connection gets 503
  with ``Retry-After`` and is closed.
- **request rate**: ``requests_per_second`` per client address (a token
  bucket holding ``burst`` requests), 429 with ``Retry-After`` above, by
  ``RateLimited``, an ASGI wrapper around the app.

The body (its size, its time, the bytes buffered across requests) is the
app's business (``collector/app.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

log = logging.getLogger("convo_warehouse.server")


@dataclass
class ClientLimits:
    header_timeout: float = 5.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1024
    max_connections_per_client: int = 64
    requests_per_second: float = 1000.0
    burst: int = 2000
    # client addresses whose rate is remembered (least recently seen forgotten first)
    tracked_clients: int = 100_000


@dataclass
class Counters:
    connections_refused: int = 0
    idle_connections_replaced: int = 0
    header_timeouts: int = 0
    headers_too_large: int = 0
    requests_rate_limited: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _raw_response(status: int, reason: str, message: str, retry_after: int | None = None) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}",
            "connection: close"]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class ConnectionGuard:
    """State shared by all connections of one server: counts per client, those waiting for a head."""

    limits: ClientLimits = field(default_factory=ClientLimits)
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self.per_client: dict[str, int] = {}
        self.open = 0
        # connections waiting for a request head, oldest first (the ones replaced at the limit)
        self.waiting: OrderedDict[object, None] = OrderedDict()
        self.buckets: OrderedDict[str, list[float]] = OrderedDict()  # client -> [tokens, last refill]

    def admit(self, connection, client: str) -> str | None:
        """None when ``connection`` may stay, else why it is refused."""
        if self.per_client.get(client, 0) >= self.limits.max_connections_per_client:
            self.counters.connections_refused += 1
            return (f"too many connections from your address (at most {self.limits.max_connections_per_client}); "
                    "reuse connections, retry shortly")
        if self.open >= self.limits.max_connections:
            oldest = next(iter(self.waiting), None)
            if oldest is None:
                self.counters.connections_refused += 1
                return f"the server holds its maximum of {self.limits.max_connections} connections; retry shortly"
            self.counters.idle_connections_replaced += 1
            oldest.drop_waiting()
        self.open += 1
        self.per_client[client] = self.per_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        self.open -= 1
        left = self.per_client.get(client, 1) - 1
        if left > 0:
            self.per_client[client] = left
        else:
            self.per_client.pop(client, None)

    def take(self, client: str, now: float | None = None) -> float:
        """Spend one request of ``client``'s budget: 0 when it may go, else seconds until it may."""
        now = time.monotonic() if now is None else now
        rate, burst = self.limits.requests_per_second, self.limits.burst
        bucket = self.buckets.get(client)
        if bucket is None:
            bucket = self.buckets[client] = [float(burst), now]
            while len(self.buckets) > self.limits.tracked_clients:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(client)
            bucket[0] = min(float(burst), bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        self.counters.requests_rate_limited += 1
        return (1.0 - bucket[0]) / rate


def guarded_protocol(guard: ConnectionGuard) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the guard's header deadline, header size and connection caps
    (pass it as ``uvicorn.run(..., http=...)``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    limits = guard.limits

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            self._head_timer = None
            self._head_bytes = 0
            self._awaiting_head = False
            self._admitted = False
            super().connection_made(transport)
            self._client_address = self.client[0] if self.client else "unknown"
            refusal = guard.admit(self, self._client_address)
            if refusal is not None:
                transport.write(_raw_response(503, "Service Unavailable", refusal, retry_after=1))
                transport.close()
                return
            self._admitted = True
            self._wait_for_head()
            self._arm_head_timer()  # from the connection on: a socket that never sends is closed too

        def connection_lost(self, exc) -> None:
            self._stop_waiting()
            if self._admitted:
                self._admitted = False
                guard.release(self._client_address)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._awaiting_head and self._head_timer is None:
                self._arm_head_timer()
            super().data_received(data)
            if self._awaiting_head:
                self._head_bytes += len(data)
                if self._head_bytes > limits.max_header_bytes and not self.transport.is_closing():
                    guard.counters.headers_too_large += 1
                    self.transport.write(_raw_response(
                        431, "Request Header Fields Too Large",
                        f"request head over {limits.max_header_bytes} bytes"))
                    self.transport.close()

        def on_headers_complete(self) -> None:
            self._stop_waiting()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                # the next request's deadline starts with its first byte (idle: uvicorn's keep-alive)
                self._wait_for_head()

        def _wait_for_head(self) -> None:
            self._awaiting_head = True
            self._head_bytes = 0
            guard.waiting[self] = None

        def _arm_head_timer(self) -> None:
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_too_slow)

        def _stop_waiting(self) -> None:
            self._awaiting_head = False
            guard.waiting.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_too_slow(self) -> None:
            self._head_timer = None
            if self._awaiting_head and not self.transport.is_closing():
                guard.counters.header_timeouts += 1
                self.transport.write(_raw_response(
                    408, "Request Timeout", f"request head not received within {limits.header_timeout:g} s"))
                self.transport.close()
            self._stop_waiting()

        def drop_waiting(self) -> None:
            """Replaced by a new connection at the total limit: closed without a word."""
            self._stop_waiting()
            self.transport.close()

    return GuardedHttpToolsProtocol


class RateLimited:
    """An ASGI app wrapper: a client address over its request rate gets 429 with ``Retry-After``."""

    def __init__(self, app, guard: ConnectionGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            wait = self.guard.take(client[0] if client else "unknown")
            if wait:
                body = json.dumps({"error": f"too many requests from your address (at most "
                                            f"{self.guard.limits.requests_per_second:g} per second); "
                                            "retry after the time in Retry-After"}).encode()
                await send({"type": "http.response.start", "status": 429,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"retry-after", str(max(1, math.ceil(wait))).encode()),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def serve(app, host: str, port: int, limits: ClientLimits, guard: ConnectionGuard | None = None,
          **uvicorn_options) -> None:
    """Run ``app`` on uvicorn with ``limits`` (``uvicorn_options``: log level, keep-alive, ...)."""
    import uvicorn

    guard = guard or ConnectionGuard(limits)
    uvicorn.run(RateLimited(app, guard), host=host, port=port, http=guarded_protocol(guard),
                limit_concurrency=None, **uvicorn_options)
