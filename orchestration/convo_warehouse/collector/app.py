"""The collector's ASGI app (Starlette): validate, de-duplicate, write durably, answer.

``POST /v1/events``: a batch (``{"events": [...]}`` or a bare list). Each event
gets ``accepted``, ``duplicate`` (same ``event_id`` seen in the recent window)
or ``rejected`` with the staging reason. Accepted events are appended to the
current landing file and fsynced *before* the answer; rejected ones to a
rejects file (``<landing>/.rejected/``, ignored by the loader) with the reason.

``POST /v1/traces``: an OTLP/JSON trace export; GenAI spans are mapped to
contract events (``convo_warehouse.lib.otel_genai``) and handled like a batch.

``POST /api/track-interaction``: a chat widget's call, one
``interaction_initialized`` event (``collector/interaction.py``).

``GET /v1/conversations/{id}``, ``GET /v1/conversations?active=true``,
``GET /v1/live``: the live state (stages, turns, sentiment, interventions of
conversations in progress), kept by a worker process (``collector/live.py``).

``GET /healthz``: liveness and counters (no key needed).

Keys (``collector/keys.py``): sending needs a key with the ``ingest`` scope,
reading one with ``read``; a key bound to agents writes and reads only
theirs. Clients are bounded before the app sees them
(``lib/server_limits.py``: header deadline and size, connections and request
rate per client); here, the bytes of bodies buffered at once, the length of
every identifier and string, and the size of every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSONResponse
from starlette.responses import Response
from starlette.routing import Route

from convo_warehouse.collector.decode import (
    BodyError,
    TooManyEvents,
    Unreadable,
    decode_event_batch,
    decode_json,
)
from convo_warehouse.collector.interaction import InteractionError, InteractionSettings, client_address, interaction_event
from convo_warehouse.collector.keys import OPEN_ACCESS, Key, KeyStore
from convo_warehouse.collector.live import LiveConfig, LiveLink, LiveUnavailable
from convo_warehouse.collector.writer import RotatingWriter
from convo_warehouse.lib import access
from convo_warehouse.lib.event_validation import Verdict, validate_event
from convo_warehouse.lib.field_aliases import read_field_aliases
from convo_warehouse.lib.otel_genai import OtlpFormatError, map_export_request, parse_export
from convo_warehouse.lib.server_limits import ClientLimits, ConnectionGuard

log = logging.getLogger("convo_warehouse.collector")


@dataclass
class CollectorConfig:
    landing_dir: Path
    # the keys (``collector/keys.py``); without one, ``tokens`` as full-access keys; neither: open (loopback only)
    keys: KeyStore | None = None
    tokens: tuple[str, ...] = ()
    max_body_bytes: int = 10 * 1024 * 1024
    # bytes of request bodies held at once (read, inflated, being processed): 503 + Retry-After above
    max_body_bytes_in_flight: int = 64 * 1024 * 1024
    # the longest identifier (event_id, conversation_id, user_id and their aliases), event_type or
    # channel, and any other string of an event; the longest event; longer: rejected, reason too_long
    max_id_chars: int = 256
    max_string_chars: int = 64 * 1024
    max_event_bytes: int = 1024 * 1024
    # the largest answer to GET /v1/conversations (a page: follow "next")
    max_answer_bytes: int = 1024 * 1024
    live_read_timeout: float = 10.0
    limits: ClientLimits = field(default_factory=ClientLimits)
    interaction: InteractionSettings = field(default_factory=InteractionSettings)
    max_batch_events: int = 10_000
    max_in_flight: int = 64
    dedupe_window: int = 200_000
    rotate_bytes: int = 64 * 1024 * 1024
    rotate_seconds: float = 60.0
    # a client must send its whole body within this many seconds (408 after):
    # a slow client holds a connection, never a processing slot
    body_timeout: float = 10.0
    # Host header values served (DNS rebinding); "*" serves any. Requests with
    # an Origin header (browsers) are refused unless the origin is listed.
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    allowed_origins: tuple[str, ...] = ()
    subfolder: str = "collector"
    # landing and rejects files: readable by the collector's user only, unless configured
    file_mode: int = 0o600
    # the live state (stages, interventions) in a worker process; None: off
    live: LiveConfig | None = None
    started_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.keys is None:
            self.keys = KeyStore(None, self.tokens)


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body (the OpenTelemetry Collector's default), at most ``limit`` bytes once inflated."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise _BadRequest(400, f"request body is not valid gzip: {error}") from error
    if len(data) > limit:
        raise _BadRequest(413, f"request body inflates to more than the {limit}-byte limit: send smaller batches")
    return data


class Collector:
    """State shared by the requests: writers, the recent-id window, counters."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        landing = Path(config.landing_dir)
        self.events = RotatingWriter(landing, config.subfolder, "events",
                                     config.rotate_bytes, config.rotate_seconds, config.file_mode)
        self.rejects = RotatingWriter(landing / ".rejected", config.subfolder, "rejected",
                                      config.rotate_bytes, config.rotate_seconds, config.file_mode)
        # digests of the most recent accepted ids (16 bytes each, whatever the id's length)
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        # identifiers and short fields, under their canonical and alias names (seeds/field_aliases.csv)
        aliases = read_field_aliases()
        short = {"event_id", "conversation_id", "session_id", "user_id", "customer_id", "event_type", "channel",
                 "timestamp"}
        self._short_fields = frozenset(short | {alias for alias, canonical in aliases.items() if canonical in short})
        # An accepted event has its four required fields, each under its shortest name (an alias
        # may be shorter: "id"), each value at least one character ({"id":1,...}); with one of them
        # a string of n characters, its line is at least 10 + n + sum(name + 3) bytes long. A line no
        # longer than that with n = max_id_chars holds no over-long identifier.
        groups = {"event_id": {"event_id"}, "conversation_id": {"conversation_id", "session_id"},
                  "event_type": {"event_type"}, "timestamp": {"timestamp"}}
        for alias, canonical in aliases.items():
            for group in groups.values():
                if canonical in group:
                    group.add(alias)
        self._short_line = 10 + config.max_id_chars + sum(min(map(len, names)) + 3 for names in groups.values())
        self._lock = threading.Lock()
        self.in_flight = 0
        self.counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "requests": 0}
        self.on_accepted: list[Callable[[list[dict], list[bytes], str], None]] = []
        self.trace_context = TraceContext()
        self.live: LiveLink | None = None
        if config.live is not None:
            live = LiveLink(config.live)
            self.live = live
            self.on_accepted.append(lambda records, lines, source: live.submit(lines, time.time()))

    def start(self) -> None:
        for writer in (self.events, self.rejects):
            writer.recover()
        if self.live is not None:
            # after recover(): the worker reads back finished files only
            self.live.start()

    def stop(self) -> None:
        self.events.close()
        self.rejects.close()
        if self.live is not None:
            self.live.stop()

    def process(self, records: list, source: str, key: Key = OPEN_ACCESS) -> list[dict]:
        """Judge, de-duplicate and durably write one batch; one result per record.

        Never raises for what a record holds: an item that cannot be read or
        judged, is too long, or is for an agent ``key`` may not write for is
        that item's ``rejected`` result. Raises ``OSError`` when the landing
        folder cannot be written (nothing was acknowledged).
        """
        received_at = datetime.now(UTC).replace(tzinfo=None)
        received_text = received_at.isoformat() + "Z"
        results: list[dict] = []
        accepted: list[tuple[dict, bytes]] = []
        rejected_lines: list[bytes] = []

        def reject(index: int, record, verdict: Verdict) -> None:
            results.append({"index": index, "event_id": verdict.event_id, "status": "rejected",
                            "reason": verdict.reason, "detail": verdict.detail})
            rejected_lines.append(_reject_line(received_text, source, verdict, record))

        bound = key.agent_ids is not None
        short_line = self._short_line
        with self._lock:
            batch_ids: dict[str, bytes] = {}  # accepted id -> its digest in the recent-id window
            for index, record in enumerate(records):
                verdict = _judge(record, received_at)
                if verdict.accepted and bound:
                    record, verdict = self._bind(record, verdict, key)
                if not verdict.accepted:
                    reject(index, record, verdict)
                    continue
                event_id = verdict.event_id
                digest = _id_digest(event_id)
                if event_id in batch_ids or digest in self._recent:
                    results.append({"index": index, "event_id": event_id, "status": "duplicate"})
                    continue
                try:
                    line = _encode(record)
                except (ValueError, RecursionError) as error:
                    reject(index, record, Verdict(event_id, "unreadable_line", f"unreadable line: {error}"))
                    continue
                if len(line) > short_line and (problem := self._too_long(record, line, event_id)):
                    reject(index, record, Verdict(event_id if len(event_id) <= self.config.max_id_chars else None,
                                                  "too_long", problem))
                    continue
                batch_ids[event_id] = digest
                accepted.append((record, line))
                results.append({"index": index, "event_id": event_id, "status": "accepted"})
            # durable before the answer (and before ids enter the window: a
            # failed write must not turn the client's retry into a "duplicate")
            self.events.append([line for _, line in accepted])
            self.rejects.append(rejected_lines)
            for digest in batch_ids.values():
                self._recent[digest] = None
            while len(self._recent) > self.config.dedupe_window:
                self._recent.popitem(last=False)
            for result in results:
                self.counts[result["status"]] += 1
            self.counts["requests"] += 1
        if accepted:
            self._events_accepted([record for record, _ in accepted], [line for _, line in accepted], source)
        return results

    def _too_long(self, record: dict, line: bytes, event_id: str) -> str | None:
        """Why an event is too long for the collector, or None: an identifier (or event type,
        channel, timestamp) over ``max_id_chars``, another string over ``max_string_chars``, or the
        whole event over ``max_event_bytes``. Called only for lines longer than ``_short_line``
        (shorter ones cannot hold such a field: the check costs nothing for most events)."""
        config = self.config
        for name, value in record.items():
            if type(value) is str:
                limit = config.max_id_chars if name in self._short_fields else config.max_string_chars
                if len(value) > limit:
                    return f"{name[:64]} is {len(value):,} characters long; at most {limit:,}"
        if len(line) > config.max_string_chars:
            return self._too_large(record, line)
        return None

    def _bind(self, record: dict, verdict: Verdict, key: Key) -> tuple[dict, Verdict]:
        """The agent a bound key may write for (an event without ``agent_id`` sent with a key of one
        agent is stored with that agent's id)."""
        properties_field = "properties" if "properties" in record or "metadata" not in record else "metadata"
        properties = record.get(properties_field)
        if isinstance(properties, str):
            try:
                properties = json.loads(properties)
            except ValueError:
                properties = None
        properties = properties if isinstance(properties, dict) else {}
        agent = properties.get("agent_id")
        agent = agent.strip() if isinstance(agent, str) else agent
        if agent in (None, "") and len(key.agent_ids) == 1:
            (only,) = key.agent_ids
            return {**record, properties_field: {**properties, "agent_id": only}}, verdict
        if not isinstance(agent, str) or not key.allows_agent(agent):
            return record, Verdict(verdict.event_id, "agent_not_allowed",
                                   f"{key.describe()} writes only for agent_id {', '.join(sorted(key.agent_ids))}; "
                                   f"this event's properties.agent_id is {agent!r}: send it with that agent's key")
        return record, verdict

    def _too_large(self, record: dict, line: bytes) -> str | None:
        """Why an event whose line is long is too long (one string, or the whole), or None."""
        if len(line) > self.config.max_event_bytes:
            return f"the event is {len(line):,} bytes as JSON; at most {self.config.max_event_bytes:,}"
        stack: list[tuple[object, str]] = [(record, "")]
        while stack:
            value, path = stack.pop()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for name, item in items:
                where = f"{path}[{name}]" if isinstance(name, int) else f"{path}.{str(name)[:64]}".lstrip(".")
                if isinstance(name, str) and len(name) > self.config.max_string_chars:
                    return f"a property name is {len(name):,} characters long; at most {self.config.max_string_chars:,}"
                if isinstance(item, str) and len(item) > self.config.max_string_chars:
                    return f"{where} is {len(item):,} characters long; at most {self.config.max_string_chars:,}"
                if isinstance(item, dict | list) and len(path) < 1024:
                    stack.append((item, where))
        return None

    def _events_accepted(self, records: list[dict], lines: list[bytes], source: str) -> None:
        """The one place where accepted (durably written) events are seen after a request.

        Listeners in ``on_accepted`` are called with the events as received,
        the same events as the lines written to the landing file (compact
        JSON), and the source (``events``, ``otlp``); a listener's error is
        logged and never changes the answer (the events are already stored).
        A listener must not block: the answer waits for it.
        """
        for listener in self.on_accepted:
            try:
                listener(records, lines, source)
            except Exception:
                log.exception("collector: an on_accepted listener failed")


def _judge(record, received_at: datetime) -> Verdict:
    """Staging's verdict for one item; an item that cannot be judged is rejected, not a 500."""
    if isinstance(record, Unreadable):
        return Verdict(None, "unreadable_line", record.reason)
    try:
        return validate_event(record, received_at)
    except Exception as error:  # any defect of one event must stay that event's answer
        event_id = record.get("event_id") if isinstance(record, dict) else None
        return Verdict(event_id if isinstance(event_id, str) else None, "unreadable_line",
                       f"unreadable line: cannot judge this event ({type(error).__name__}: {error})"[:500])


def _reject_line(received_text: str, source: str, verdict: Verdict, record) -> bytes:
    """One line of the rejects file: the event as received, or its text when it cannot be encoded."""
    entry = {"received_at": received_text, "source": source, "reason": verdict.reason,
             "detail": verdict.detail}
    event = record.text if isinstance(record, Unreadable) else record
    try:
        return _encode({**entry, "event": event})
    except (ValueError, RecursionError):
        return _encode({**entry, "event": repr(event)[:4096]})


def _id_digest(event_id: str) -> bytes:
    """A fixed-size key for the recent-id window, whatever the length of the id."""
    return hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# ensure_ascii: every line is valid UTF-8 JSON whatever the client sent
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _encode(value) -> bytes:
    return _ENCODER.encode(value).encode("ascii")


class JSONResponse(_StarletteJSONResponse):
    """JSON in ASCII: whatever a client sent (a lone surrogate in an ``event_id`` included) is
    echoed as a JSON escape, so encoding an answer can never fail after the events were stored."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=True, separators=(",", ":"),
                          default=repr).encode("ascii")


class BodyBudget:
    """Bytes of request bodies held at once (as received, inflated, while processed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.refused = 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> bool:
        with self._lock:
            if self.used + size > self.limit and self.used > 0:
                self.refused += 1
                return False
            self.used += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self.used -= size


class _Reservation:
    """What one request holds of the budget; released once, when the request is done."""

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.size = 0

    def take(self, size: int) -> None:
        if not self.budget.reserve(size):
            raise _BadRequest(503, f"the collector already holds {self.budget.limit:,} bytes of request bodies; "
                                   "retry shortly", {"Retry-After": "1", "Connection": "close"})
        self.size += size

    def release(self) -> None:
        if self.size:
            self.budget.release(self.size)
            self.size = 0


READ_SCOPE, INGEST_SCOPE = "read", "ingest"
INTERACTION_PATH = "/api/track-interaction"


def create_app(config: CollectorConfig) -> Starlette:
    collector = Collector(config)
    keys = config.keys
    budget = BodyBudget(config.max_body_bytes_in_flight)
    guard = ConnectionGuard(config.limits)

    def authorize(request: Request, scope: str) -> Key:
        """The request's key, which has ``scope``; 401 without a known key, 403 without the scope."""
        if not keys.configured:
            return OPEN_ACCESS
        key = keys.authenticate(access.bearer_token(request.headers.get("authorization")))
        if key is None:
            raise _BadRequest(401, "missing or unknown key: send 'Authorization: Bearer <key>' with a key of "
                                   "the collector's keys file (`convo-warehouse keys create`)",
                              {"WWW-Authenticate": 'Bearer realm="convo-warehouse"'})
        if scope not in key.scopes:
            raise _BadRequest(403, f"{key.describe()} lacks the {scope} scope that {request.method} "
                                   f"{request.url.path} needs: use a key with scope {scope} "
                                   f"(`convo-warehouse keys create --scope {scope}`)")
        return key

    def check_origin(request: Request) -> None:
        refusal = access.cross_site_refusal(request.headers, config.allowed_origins)
        if refusal:
            raise _BadRequest(403, refusal)

    def check_content(request: Request, content_types: tuple[str, ...]) -> tuple[str, str]:
        """(content type, encoding): only types a cross-site form cannot send without a preflight."""
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip"):
            raise _BadRequest(415, f"content encoding {encoding[:40]} is not supported: send plain or gzip")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in content_types:
            raise _BadRequest(415, f"content type {content_type[:80] or '(none)'} is not supported: send "
                                   + " or ".join(content_types))
        return content_type, encoding

    async def read_body_in_time(request: Request, held: _Reservation) -> bytes:
        try:
            return await asyncio.wait_for(read_body(request, held), config.body_timeout)
        except TimeoutError as error:
            raise _BadRequest(408, f"request body not received within {config.body_timeout:g} s",
                              {"Connection": "close"}) from error

    async def read_body(request: Request, held: _Reservation) -> bytes:
        """The whole body, at most ``max_body_bytes`` (413 above), held within the budget (503 above)."""
        limit = config.max_body_bytes
        declared = request.headers.get("content-length")
        declared_size = int(declared) if declared is not None and declared.isdigit() else None
        if declared_size is not None and declared_size <= limit:
            held.take(declared_size)  # before a byte is buffered
        chunks, size = [], 0
        stream = request.stream()
        if declared_size is None or declared_size <= limit:
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    break
                if declared_size is None or size > declared_size:
                    held.take(len(chunk))
                chunks.append(chunk)
        if size > limit or (declared_size or 0) > limit:
            chunks.clear()
            # Read the rest (up to a bound, holding none of it) so that the client, still
            # sending, can read this answer instead of seeing its connection reset.
            if max(size, declared_size or 0) <= 8 * limit:
                async for chunk in stream:
                    size += len(chunk)
                    if size > 8 * limit:
                        break
            raise _BadRequest(413, f"request body of {declared_size or 'more than ' + str(limit)} bytes is "
                                   f"over the {limit}-byte limit: send smaller batches")
        return b"".join(chunks)

    def inflate(body: bytes, encoding: str, held: _Reservation) -> bytes:
        if encoding != "gzip":
            return body
        data = _gunzip(body, config.max_body_bytes)
        held.take(len(data))
        return data

    # The work on a body runs in a worker thread (JSON decoding, OTLP mapping,
    # validation, the fsync), so the event loop keeps serving other clients.

    def handle_events(body: bytes, content_type: str, encoding: str, key: Key, held: _Reservation) -> dict:
        try:
            records = decode_event_batch(inflate(body, encoding, held), config.max_batch_events)
        except TooManyEvents as error:
            raise _BadRequest(413, str(error)) from error
        except BodyError as error:
            raise _BadRequest(400, str(error)) from error
        return _summary(collector.process(records, "events", key))

    def handle_otlp(signal: str, body: bytes, content_type: str, encoding: str, key: Key,
                    held: _Reservation) -> Response:
        try:
            context = collector.trace_context if signal == "logs" else None
            # in one expression: the decoded body is freed once mapped, before the events are judged
            mapped = map_export_request(parse_export(inflate(body, encoding, held), content_type, signal), context)
        except OtlpFormatError as error:
            raise _BadRequest(400, str(error)) from error
        if len(mapped.events) > config.max_batch_events:
            raise _BadRequest(413, f"{len(mapped.events)} events from one export; at most "
                                   f"{config.max_batch_events}: export smaller batches")
        collector.trace_context.remember(mapped.trace_context)
        results = collector.process(mapped.events, "otlp", key)
        return otlp_answer(signal, mapped.events, results, content_type)

    def handle_traces(body: bytes, content_type: str, encoding: str, key: Key, held: _Reservation) -> Response:
        return handle_otlp("traces", body, content_type, encoding, key, held)

    def handle_logs(body: bytes, content_type: str, encoding: str, key: Key, held: _Reservation) -> Response:
        return handle_otlp("logs", body, content_type, encoding, key, held)

    def interaction_handler(request: Request):
        address = client_address(request.client.host if request.client else None,
                                 request.headers.get("x-forwarded-for"), config.interaction)

        def handle(body: bytes, content_type: str, encoding: str, key: Key, held: _Reservation) -> Response:
            try:
                event, ignored = interaction_event(decode_json(inflate(body, encoding, held)),
                                                   request.headers.get("user-agent"), address, config.interaction)
            except (InteractionError, BodyError) as error:
                raise _BadRequest(400, str(error)) from error
            [result] = collector.process([event], "interaction", key)
            if result["status"] == "rejected":
                status = 403 if result["reason"] == "agent_not_allowed" else 400
                raise _BadRequest(status, f"{result['reason']}: {result['detail']}")
            answer = {"status": "interaction_tracked", "conversation_id": event["conversation_id"]}
            if ignored:
                answer["ignored_fields"] = ignored
            return JSONResponse(answer)

        return handle

    async def guarded(request: Request, handler, content_types: tuple[str, ...],
                      extra_headers: dict | None = None) -> Response:
        held = _Reservation(budget)
        try:
            try:
                check_origin(request)
                key = authorize(request, INGEST_SCOPE)
                content_type, encoding = check_content(request, content_types)
                # the body first: a client that sends slowly never holds a processing slot
                body = await read_body_in_time(request, held)
            except _BadRequest as error:
                return _error(error, extra_headers)
            if collector.in_flight >= config.max_in_flight:
                return JSONResponse({"error": "too many requests in flight; retry shortly"}, status_code=429,
                                    headers={"Retry-After": "1", **(extra_headers or {})})
            collector.in_flight += 1
            try:
                answer = await run_in_threadpool(handler, body, content_type, encoding, key, held)
                response = answer if isinstance(answer, Response) else JSONResponse(answer)
                response.headers.update(extra_headers or {})
                return response
            except _BadRequest as error:
                return _error(error, extra_headers)
            except OSError as error:
                log.exception("collector: cannot write to the landing folder")
                return JSONResponse({"error": f"cannot store events now ({error.strerror}); retry later"},
                                    status_code=503, headers={"Retry-After": "5", **(extra_headers or {})})
            finally:
                collector.in_flight -= 1
        finally:
            held.release()

    async def post_events(request: Request) -> Response:
        return await guarded(request, handle_events, ("application/json",))

    async def post_traces(request: Request) -> Response:
        return await guarded(request, handle_traces, OTLP_CONTENT_TYPES)

    async def post_logs(request: Request) -> Response:
        return await guarded(request, handle_logs, OTLP_CONTENT_TYPES)

    def cors_headers(request: Request) -> dict:
        origin = request.headers.get("origin")
        if origin is None or origin not in config.allowed_origins:
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    async def track_interaction(request: Request) -> Response:
        return await guarded(request, interaction_handler(request), ("application/json",), cors_headers(request))

    async def track_interaction_preflight(request: Request) -> Response:
        """CORS preflight: answered for the origins listed with --allowed-origin only."""
        headers = cors_headers(request)
        if not headers:
            return JSONResponse({"error": f"origin {str(request.headers.get('origin'))[:200]} may not call "
                                          f"{INTERACTION_PATH}: list it with --allowed-origin"}, status_code=403)
        return Response(status_code=204, headers={
            **headers, "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600"})

    async def healthz(request: Request) -> Response:
        live = collector.live.health() if collector.live is not None else {"state": "off"}
        return JSONResponse({
            "status": "degraded" if live["state"] not in ("running", "off") else "ok",
            "landing_dir": str(config.landing_dir),
            "uptime_seconds": round(time.time() - config.started_at, 1),
            "auth": keys.configured,
            "live": live,
            "live_dropped_events": collector.live.dropped_events if collector.live else 0,
            "connections": {"open": guard.open, **guard.counters.as_dict()},
            "body_bytes_held": budget.used,
            "bodies_refused_over_budget": budget.refused,
            **collector.counts,
        })

    async def ask_live(request: Request, question: tuple, key_needed=None) -> Response | object:
        """The live worker's answer to ``question`` for the request's key, or an error response."""
        try:
            check_origin(request)
            key = authorize(request, READ_SCOPE)
            if key_needed is not None:
                key_needed(key)
        except _BadRequest as error:
            return _error(error)
        if collector.live is None:
            return JSONResponse({"error": "the live state is off (collect --no-live)"}, status_code=503)
        agents = None if key.agent_ids is None else tuple(sorted(key.agent_ids))
        try:
            return await run_in_threadpool(collector.live.ask, (*question, agents), config.live_read_timeout)
        except LiveUnavailable as error:
            return JSONResponse({"error": str(error)}, status_code=503, headers={"Retry-After": "1"})

    async def get_conversation(request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        answer = await ask_live(request, ("conversation", conversation_id))
        if isinstance(answer, Response):
            return answer
        if answer is None:
            return JSONResponse({"error": f"conversation {conversation_id[:300]} is not in the live state (for "
                                          "this key): unknown, idle longer than the abandonment window, or "
                                          "another agent's"}, status_code=404)
        return JSONResponse(answer)

    async def list_conversations(request: Request) -> Response:
        active = request.query_params.get("active", "true").lower()
        if active not in ("true", "1", "false", "0"):
            return JSONResponse({"error": "active must be true or false"}, status_code=400)
        limit_text = request.query_params.get("limit", "500")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            return JSONResponse({"error": "limit must be a whole number from 1 to 1000 (follow \"next\" for "
                                          "more)"}, status_code=400)
        after = request.query_params.get("after")
        if after is not None and len(after) > 2 * config.max_id_chars + 64:
            return JSONResponse({"error": "after must be the \"next\" of a previous page"}, status_code=400)
        answer = await ask_live(request, ("active" if active in ("true", "1") else "all", int(limit_text), after,
                                          config.max_answer_bytes))
        if isinstance(answer, Response):
            return answer
        if "error" in answer:
            return JSONResponse({"error": answer["error"]}, status_code=400)
        return JSONResponse({"conversations": answer["conversations"], "count": len(answer["conversations"]),
                             "next": answer["next"]})

    def unbound_only(key: Key) -> None:
        if key.agent_ids is not None:
            raise _BadRequest(403, f"{key.describe()} is bound to agents; /v1/live counts every agent's "
                                   "conversations: use a read key bound to no agent")

    async def live_stats(request: Request) -> Response:
        answer = await ask_live(request, ("stats",), unbound_only)
        if isinstance(answer, Response):
            return answer
        return JSONResponse({**answer, "dropped_events": collector.live.dropped_events,
                             "submitted_batches": collector.live.submitted_batches,
                             "worker": collector.live.health()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        collector.start()

        async def rotate_periodically() -> None:
            while True:
                await asyncio.sleep(min(1.0, config.rotate_seconds))
                await run_in_threadpool(collector.events.rotate_if_due)
                await run_in_threadpool(collector.rejects.rotate_if_due)

        task = asyncio.create_task(rotate_periodically())
        try:
            yield
        finally:
            task.cancel()
            collector.stop()

    app = Starlette(
        routes=[
            Route("/v1/events", post_events, methods=["POST"]),
            Route("/v1/traces", post_traces, methods=["POST"]),
            Route("/v1/logs", post_logs, methods=["POST"]),
            Route(INTERACTION_PATH, track_interaction, methods=["POST"]),
            Route(INTERACTION_PATH, track_interaction_preflight, methods=["OPTIONS"]),
            Route("/v1/conversations", list_conversations, methods=["GET"]),
            Route("/v1/conversations/{conversation_id:path}", get_conversation, methods=["GET"]),
            Route("/v1/live", live_stats, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts),
                               www_redirect=False)],
    )
    app.state.collector = collector
    app.state.guard = guard
    return app


def _error(error: _BadRequest, extra_headers: dict | None = None) -> Response:
    return JSONResponse({"error": str(error)}, status_code=error.status,
                        headers={**error.headers, **(extra_headers or {})})


OTLP_CONTENT_TYPES = ("application/x-protobuf", "application/json")


def otlp_answer(signal: str, events: list[dict], results: list[dict], content_type: str) -> Response:
    """OTLP's answer: an empty export response, or ``partial_success`` naming what was rejected.

    In the request's own encoding (protobuf or JSON), as OTLP/HTTP requires.
    """
    response = (ExportTraceServiceResponse() if signal == "traces" else ExportLogsServiceResponse())
    rejected = [result for result in results if result["status"] == "rejected"]
    if rejected:
        partial = response.partial_success
        count = len({events[r["index"]]["properties"].get("otel_span_id") for r in rejected})
        if signal == "traces":
            partial.rejected_spans = count
        else:
            partial.rejected_log_records = count
        partial.error_message = "; ".join(sorted({f"{r['reason']}: {r['detail']}" for r in rejected}))[:1000]
    if content_type == "application/x-protobuf":
        return Response(response.SerializeToString(), media_type="application/x-protobuf")
    return JSONResponse(json_format.MessageToDict(response))


class TraceContext:
    """Recent trace ids -> (conversation_id, user_id), learned from spans, for log events.

    Log events of a model call carry the call's trace id but no conversation id,
    which sits on the agent's span. Bounded in entries (most recent traces) and
    in bytes (the lengths of what each entry holds), in memory.
    """

    ENTRY_OVERHEAD = 200  # bytes of an entry besides its strings (the tuple, the dict slot)

    def __init__(self, size: int = 100_000, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._known: OrderedDict[str, tuple] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def _cost(cls, trace_id: str, value: tuple) -> int:
        return cls.ENTRY_OVERHEAD + len(trace_id) + sum(len(item) for item in value if isinstance(item, str))

    def remember(self, traces: dict[str, tuple]) -> None:
        if not traces:
            return
        with self._lock:
            for trace_id, value in traces.items():
                old = self._known.pop(trace_id, None)
                if old is not None:
                    self.bytes -= self._cost(trace_id, old)
                self._known[trace_id] = value
                self.bytes += self._cost(trace_id, value)
            while self._known and (len(self._known) > self.size or self.bytes > self.max_bytes):
                trace_id, value = self._known.popitem(last=False)
                self.bytes -= self._cost(trace_id, value)

    def get(self, trace_id: str, default: tuple) -> tuple:
        with self._lock:
            return self._known.get(trace_id, default)


def _summary(results: list[dict]) -> dict:
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for result in results:
        counts[result["status"]] += 1
    return {**counts, "results": results}
