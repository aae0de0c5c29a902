"""OpenTelemetry GenAI spans and log events -> contract events (pure: no I/O, no Dagster, no DuckDB).

Input is an OTLP export request, traces (``ExportTraceServiceRequest``) or
logs (``ExportLogsServiceRequest``), in any of its forms: binary protobuf as
the OpenTelemetry SDKs send it (``parse_export``), its JSON form as the
collector receives it with ``application/json``, or the decoded JSON of one
line of a ``*.otlp.jsonl`` landing file (``map_export_request``). Both
encodings are read into the same plain values (a dict per span or log record,
attributes as ``{key: value}``), and the mapping reads only those, so its
rules live once: protobuf through the OTLP messages of ``opentelemetry-proto``;
JSON directly, type-checking every field the way ``json_format`` does, and
through ``json_format`` itself (the message) for anything that direct reader
does not take (``tests/capture/test_otlp_encodings.py`` proves both give the same
events, and the same errors). A request that is not an export raises
``OtlpFormatError`` (a ``ValueError``) naming what is wrong, which the
collector answers with 400 and the loader quarantines as an
``unreadable_line``.

Spans are read per the GenAI semantic conventions, current and older names:

* ``execute_tool`` -> ``tool_called`` (``gen_ai.tool.name``), at the span start.
* ``chat`` / ``text_completion`` / ``generate_content`` (and ``invoke_agent``
  with no such span below it in the request) ->
  - ``user_message`` at the span start, when the last input message has role
    ``user`` (the user just spoke; a step after a tool result does not repeat it);
  - ``agent_message`` at the span end with ``model``, tokens (input, output,
    cache read/creation, reasoning), ``latency_ms`` (span duration) and the
    output text, unless the model only asked for tools (finish reasons all
    tool calls, no text): that step is not a message to the user.
* ``invoke_agent`` -> ``conversation_started`` carrying ``agent_id``
  (``gen_ai.agent.id``, ``gen_ai.agent.name``, else the resource's
  ``service.name``) and ``environment`` (``deployment.environment.name``);
  one per conversation, since its ``event_id`` is derived from the
  conversation id. With a ``convo.outcome`` attribute (``completed``,
  ``abandoned``, ``ended``) it also records that outcome at the span end.
* A span whose status is ERROR, or with ``error.type``, gives its event an
  ``error`` property (the error type, else the status message).

Log events (``/v1/logs``): ``gen_ai.user.message`` / ``gen_ai.choice`` (one
event per message, the older conventions) and
``gen_ai.client.inference.operation.details`` (one event per model call)
become the same ``user_message`` / ``agent_message`` events as the span they
belong to, with the same ``event_id``, so a message seen through both signals
counts once.

``conversation_id`` is ``gen_ai.conversation.id`` (or ``session.id``) of the
span or its nearest ancestor in the request (for a log event: its own
attributes, its resource's, else ``context`` — ids the caller learned from
earlier spans of the same trace); ``user_id`` likewise from ``user.id`` /
``enduser.id``. A GenAI span or event with none still becomes an event, which
staging (and the collector) reject for the missing field: nothing is dropped
silently. Spans of other kinds (HTTP, database, ...) are ignored and counted.

Event ids are deterministic (trace id, span id, role), so exporting the same
spans twice yields duplicates that staging drops.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
AGENT_OPERATION = "invoke_agent"
TOOL_OPERATION = "execute_tool"
GENAI_OPERATIONS = CHAT_OPERATIONS | {AGENT_OPERATION, TOOL_OPERATION}
_TOOL_FINISH_REASONS = frozenset({"tool_calls", "tool_call", "tool_use", "function_call"})
OUTCOME_ATTRIBUTE = "convo.outcome"
_OUTCOME_EVENTS = {"completed": "conversation_completed", "abandoned": "conversation_abandoned",
                   "ended": "conversation_ended"}
_STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
_CONVERSATION_KEYS = ("gen_ai.conversation.id", "session.id")
_USER_KEYS = ("user.id", "enduser.id")

SIGNALS = {"traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest}


class OtlpFormatError(ValueError):
    """The input is not an OTLP export request (the message names what and where)."""


@dataclass
class MappingReport:
    """What a mapping did: events made, GenAI spans / log events read, others ignored."""

    events: list[dict] = field(default_factory=list)
    genai_spans: int = 0
    ignored_spans: int = 0
    genai_log_events: int = 0
    ignored_log_events: int = 0
    # trace id -> (conversation_id, user_id) seen on this request's spans, so a
    # caller can resolve log events of the same trace that arrive later
    trace_context: dict[str, tuple[Any, Any]] = field(default_factory=dict)


# --- reading: bytes or JSON -> plain values ----------------------------------------------
#
# Both encodings are read into the same plain values (one dict per span or log
# record, attributes as ``{key: value}``), which the mapping below reads: the
# rules live once. Protobuf is read from the parsed message; OTLP/JSON is read
# straight from the decoded JSON by ``_read_json``, which handles the exports
# OTLP/JSON exporters write and hands anything else (a value of another JSON
# type, an unknown enum name, snake_case keys, bytes values, an error) to
# ``message_from_json`` (``json_format``), which decides: the same values, or
# the error. tests/capture/test_otlp_encodings.py proves both readers give the same
# events.


@dataclass(frozen=True)
class OtlpJson:
    """An OTLP/JSON export as decoded JSON; ``signal`` (traces, logs) as the endpoint says, None to infer."""

    value: Any
    signal: str | None = None


def parse_export(body: bytes, content_type: str, signal: str) -> Message | OtlpJson:
    """An OTLP/HTTP request body (``application/x-protobuf`` or ``application/json``), for ``map_export_request``."""
    message_type = SIGNALS[signal]
    if content_type == "application/x-protobuf":
        message = message_type()
        try:
            message.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as error:
            raise OtlpFormatError(f"not an OTLP {signal} export in protobuf: {error}") from error
        return message
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise OtlpFormatError(f"request body is not valid JSON: {error}") from error
    except RecursionError as error:
        raise OtlpFormatError("request body is nested deeper than the collector reads") from error
    return OtlpJson(value, signal)


_ID_FIELDS = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
_TOP_KEYS = {"resourceSpans": "traces", "resource_spans": "traces",
             "resourceLogs": "logs", "resource_logs": "logs"}
_MAX_DEPTH = 64  # nested messages (attributes holding lists of maps ...); protobuf's own limit is 100


def message_from_json(value: Any, signal: str | None = None) -> Message:
    """The OTLP/JSON form of an export as its message; ``signal`` inferred when None.

    The JSON is first walked along the message's schema: every message must be
    an object and every repeated field a list (``json_format`` lets a string
    stand for a message when unknown fields are ignored), unknown fields are
    dropped (OTLP receivers must ignore them), and trace and span ids, hex in
    OTLP/JSON, become the base64 ``json_format`` reads. ``json_format`` then
    checks every scalar.
    """
    signal = _json_signal(value, signal)
    message = SIGNALS[signal]()
    checked = _checked(value, message.DESCRIPTOR, "", 0)
    try:
        json_format.ParseDict(checked, message)
    except (json_format.ParseError, TypeError, ValueError, OverflowError) as error:
        raise OtlpFormatError(f"not an OTLP {signal} export: {error}") from error
    except RecursionError as error:
        raise OtlpFormatError(f"not an OTLP {signal} export: nested deeper than the collector reads") from error
    return message


def _json_signal(value: Any, signal: str | None) -> str:
    if not isinstance(value, dict):
        raise OtlpFormatError(f"not an OTLP export: expected a JSON object, got {_kind(value)}")
    if signal is None:
        found = {_TOP_KEYS[key] for key in value if key in _TOP_KEYS}
        if len(found) != 1:
            raise OtlpFormatError("not an OTLP export: expected an object with resourceSpans or resourceLogs")
        signal = found.pop()
    return signal


_FIELDS_CACHE: dict[str, dict] = {}


def _fields(descriptor) -> dict:
    fields = _FIELDS_CACHE.get(descriptor.full_name)
    if fields is None:
        fields = {}
        for field_descriptor in descriptor.fields:
            fields[field_descriptor.name] = fields[field_descriptor.json_name] = field_descriptor
        _FIELDS_CACHE[descriptor.full_name] = fields
    return fields


def _checked(value: Any, descriptor, where: str, depth: int) -> dict:
    """``value`` with its shape checked against ``descriptor`` (see ``message_from_json``)."""
    if not isinstance(value, dict):
        raise OtlpFormatError(f"not an OTLP export: {where or 'the request'} must be an object, got {_kind(value)}")
    if depth > _MAX_DEPTH:
        raise OtlpFormatError(f"not an OTLP export: {where} is nested more than {_MAX_DEPTH} levels deep")
    checked = {}
    fields = _fields(descriptor)
    for key, item in value.items():
        field_descriptor = fields.get(key)
        if field_descriptor is None or item is None:
            continue
        place = f"{where}.{key}" if where else key
        if field_descriptor.is_repeated:
            if not isinstance(item, list):
                raise OtlpFormatError(f"not an OTLP export: {place} must be a list, got {_kind(item)}")
            if field_descriptor.message_type is not None:
                item = [_checked(element, field_descriptor.message_type, f"{place}[{index}]", depth + 1)
                        for index, element in enumerate(item)]
        elif field_descriptor.message_type is not None:
            item = _checked(item, field_descriptor.message_type, place, depth + 1)
        elif field_descriptor.name in _ID_FIELDS and item != "":
            item = _id_as_base64(item, _ID_FIELDS[field_descriptor.name], place)
        elif field_descriptor.enum_type is not None and isinstance(item, str) and _SURROGATE.search(item):
            # upb's enum lookup fails with a SystemError on text that is not UTF-8
            raise OtlpFormatError(f"not an OTLP export: {place} is not a valid enum name: {item[:40]!r}")
        checked[key] = item
    return checked


_HEX = re.compile(r"[0-9a-fA-F]*")


def _id_as_base64(value: Any, size: int, place: str) -> str:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise OtlpFormatError(f"not an OTLP export: {place} must be {2 * size} hex digits, got {str(value)[:40]!r}")
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


# --- message -> plain values -------------------------------------------------------------


def _any_value(value) -> Any:
    """An OTLP ``AnyValue`` as a plain Python value."""
    kind = value.WhichOneof("value")
    return value.string_value if kind == "string_value" else _value_of_kind(value, kind)


def _value_of_kind(value, kind: str | None) -> Any:
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _any_value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)


def _attributes(items) -> dict[str, Any]:
    # _any_value inlined: attributes are most of the time spent reading a protobuf export
    attributes = {}
    for item in items:
        value = item.value
        kind = value.WhichOneof("value")
        attributes[item.key] = value.string_value if kind == "string_value" else _value_of_kind(value, kind)
    return attributes


def _read_message(request: Message) -> tuple[str, list[dict]]:
    """(signal, the export's spans or log records as plain dicts)."""
    items: list[dict] = []
    if isinstance(request, ExportLogsServiceRequest):
        for resource_logs in request.resource_logs:
            resource = _attributes(resource_logs.resource.attributes)
            for scope_logs in resource_logs.scope_logs:
                items.extend(_record_dict(record, resource) for record in scope_logs.log_records)
        return "logs", items
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            items.extend(_span_dict(span, resource) for span in scope_spans.spans)
    return "traces", items


def _span_dict(span, resource: dict) -> dict:
    status, events = span.status, span.events
    return {
        "traceId": span.trace_id.hex(),
        "spanId": span.span_id.hex(),
        "parentSpanId": span.parent_span_id.hex(),
        "name": span.name,
        "startTimeUnixNano": span.start_time_unix_nano,
        "endTimeUnixNano": span.end_time_unix_nano,
        "events": [{"name": event.name, "attributes": _attributes(event.attributes)} for event in events]
        if events else [],
        "status": (status.code, status.message),
        "_attributes": _attributes(span.attributes),
        "_resource": resource,
    }


def _record_dict(record, resource: dict) -> dict:
    return {
        "event_name": record.event_name,
        "traceId": record.trace_id.hex(),
        "spanId": record.span_id.hex(),
        "time": record.time_unix_nano or record.observed_time_unix_nano,
        "body": _any_value(record.body) if record.HasField("body") else None,
        "_attributes": _attributes(record.attributes),
        "_resource": resource,
    }


# --- OTLP/JSON -> plain values, directly -------------------------------------------------
#
# Each converter returns the value as the protobuf reader above gives it, or
# raises _Irregular for anything it does not read itself (json_format then
# decides). Unknown keys are ignored (as message_from_json drops them); a key
# that names a field another way (snake_case) is irregular.


class _Irregular(Exception):
    """Not the plain form ``_read_json`` reads itself: let ``message_from_json`` judge it."""


def _irregular(value: Any) -> Any:
    raise _Irregular


_SURROGATE = re.compile("[\ud800-\udfff]")
_UINT32 = 1 << 32
_UINT64 = 1 << 64
_INT64 = 1 << 63
_ENUM_RANGE = 1 << 31


def _text(value: Any) -> str:
    if type(value) is not str or (not value.isascii() and _SURROGATE.search(value)):
        raise _Irregular
    return value


def _uint32(value: Any) -> int:
    if type(value) is not int or not 0 <= value < _UINT32:
        raise _Irregular
    return value


def _enum(enum_type):
    """An enum field's converter: its number, or its name (as ``json_format`` writes enums)."""
    numbers = {value.name: value.number for value in enum_type.values}

    def read(value: Any) -> int:
        if type(value) is str and value in numbers:
            return numbers[value]
        if type(value) is not int or not -_ENUM_RANGE <= value < _ENUM_RANGE:
            raise _Irregular
        return value
    return read


def _fixed64(value: Any) -> int:
    if type(value) is str and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is not int or not 0 <= value < _UINT64:
        raise _Irregular
    return value


def _int64(value: Any) -> int:
    if type(value) is str and value.isascii() and value.lstrip("-").isdigit() and value.count("-") <= 1:
        value = int(value)
    if type(value) is not int or not -_INT64 <= value < _INT64:
        raise _Irregular
    return value


def _double(value: Any) -> float:
    if type(value) is float and math.isfinite(value):
        return value
    if type(value) is int and -(1 << 53) <= value <= 1 << 53:
        return float(value)
    raise _Irregular


def _hex_id(size: int):
    def read(value: Any) -> str:
        if type(value) is not str or (value and (len(value) != 2 * size or not _HEX.fullmatch(value))):
            raise _Irregular
        return value.lower()
    return read


def _json_any(value: Any, depth: int = 0) -> Any:
    """An ``AnyValue`` in JSON as ``_any_value`` gives it."""
    if type(value) is not dict or len(value) > 1 or depth > _MAX_DEPTH // 2:
        raise _Irregular
    if not value:
        return None
    [(key, item)] = value.items()
    if key == "stringValue":
        return _text(item)
    if key == "intValue":
        return _int64(item)
    if key == "boolValue":
        if type(item) is not bool:
            raise _Irregular
        return item
    if key == "doubleValue":
        return _double(item)
    if key == "arrayValue":
        return [_json_any(element, depth + 1) for element in _values(item)]
    if key == "kvlistValue":
        return _json_attributes(_values(item), depth + 1)
    raise _Irregular


def _values(value: Any) -> list:
    """The ``values`` list of an ``ArrayValue`` / ``KeyValueList``."""
    if type(value) is not dict or len(value) > 1:
        raise _Irregular
    items = value.get("values", [])
    if type(items) is not list or (value and "values" not in value):
        raise _Irregular
    return items


def _json_attributes(items: Any, depth: int = 0) -> dict[str, Any]:
    if type(items) is not list:
        raise _Irregular
    attributes = {}
    for item in items:
        if type(item) is not dict or len(item) != 2 or "key" not in item or "value" not in item:
            raise _Irregular
        key, value = _text(item["key"]), item["value"]
        # _json_any inlined for a string value: attributes are most of the time spent reading a JSON export
        text = value.get("stringValue") if type(value) is dict and len(value) == 1 else None
        if type(text) is str and (text.isascii() or not _SURROGATE.search(text)) and depth <= _MAX_DEPTH // 2:
            attributes[key] = text
        else:
            attributes[key] = None if value is None else _json_any(value, depth)
    return attributes


def _message_reader(fields: dict[str, tuple[str | None, Any]], snake_case: tuple[str, ...] = (), new=dict):
    """A converter of one message: ``fields`` maps each JSON key to (the key it is kept as or None, converter).

    ``new`` makes the dict the converted fields are kept in: for a span, its
    plain value with every default, so the span is read in one dict.
    """
    table = dict(fields)
    table.update({name: (None, _irregular) for name in snake_case})

    def read(value: Any) -> dict:
        if type(value) is not dict:
            raise _Irregular
        kept = new()
        for key, item in value.items():
            entry = table.get(key)
            if entry is None or item is None:
                continue
            name, convert = entry
            converted = convert(item)
            if name is not None:
                kept[name] = converted
        return kept
    return read


def _repeated(convert):
    def read(value: Any) -> list:
        if type(value) is not list:
            raise _Irregular
        return [convert(item) for item in value]
    return read


def _empty_list(value: Any) -> None:
    if value != []:
        raise _Irregular


_read_json_scope = _message_reader({
    "name": (None, _text), "version": (None, _text), "attributes": (None, _json_attributes),
    "droppedAttributesCount": (None, _uint32)}, ("dropped_attributes_count",))
_read_json_resource = _message_reader({
    "attributes": ("attributes", _json_attributes), "droppedAttributesCount": (None, _uint32),
    "entityRefs": (None, _empty_list)}, ("dropped_attributes_count", "entity_refs"))
_read_json_span_event = _message_reader({
    "timeUnixNano": (None, _fixed64), "name": ("name", _text), "attributes": ("attributes", _json_attributes),
    "droppedAttributesCount": (None, _uint32)}, ("time_unix_nano", "dropped_attributes_count"),
    lambda: {"name": "", "attributes": {}})
_read_json_link = _message_reader({
    "traceId": (None, _hex_id(16)), "spanId": (None, _hex_id(8)), "traceState": (None, _text),
    "attributes": (None, _json_attributes), "droppedAttributesCount": (None, _uint32), "flags": (None, _uint32)},
    ("trace_id", "span_id", "trace_state", "dropped_attributes_count"))
_status_code = _enum(Status.DESCRIPTOR.fields_by_name["code"].enum_type)
_span_kind = _enum(Span.DESCRIPTOR.fields_by_name["kind"].enum_type)
_severity_number = _enum(LogRecord.DESCRIPTOR.fields_by_name["severity_number"].enum_type)
_read_json_status_fields = _message_reader({"message": ("message", _text), "code": ("code", _status_code)})


def _read_json_status(value: Any) -> tuple[int, str]:
    status = _read_json_status_fields(value)
    return status.get("code", 0), status.get("message", "")


def _new_span() -> dict:
    """A span's plain value (as ``_span_dict`` gives it) before its fields are read, ``_resource`` aside."""
    return {"traceId": "", "spanId": "", "parentSpanId": "", "name": "", "startTimeUnixNano": 0,
            "endTimeUnixNano": 0, "events": [], "status": (0, ""), "_attributes": {}}


_read_json_span = _message_reader({
    "traceId": ("traceId", _hex_id(16)), "spanId": ("spanId", _hex_id(8)), "traceState": (None, _text),
    "parentSpanId": ("parentSpanId", _hex_id(8)), "flags": (None, _uint32), "name": ("name", _text),
    "kind": (None, _span_kind), "startTimeUnixNano": ("startTimeUnixNano", _fixed64),
    "endTimeUnixNano": ("endTimeUnixNano", _fixed64), "attributes": ("_attributes", _json_attributes),
    "droppedAttributesCount": (None, _uint32), "events": ("events", _repeated(_read_json_span_event)),
    "droppedEventsCount": (None, _uint32), "links": (None, _repeated(_read_json_link)),
    "droppedLinksCount": (None, _uint32), "status": ("status", _read_json_status)},
    ("trace_id", "span_id", "trace_state", "parent_span_id", "start_time_unix_nano", "end_time_unix_nano",
     "dropped_attributes_count", "dropped_events_count", "dropped_links_count"), _new_span)
_read_json_record = _message_reader({
    "timeUnixNano": ("time", _fixed64), "observedTimeUnixNano": ("observed", _fixed64),
    "severityNumber": (None, _severity_number), "severityText": (None, _text), "body": ("body", _json_any),
    "attributes": ("attributes", _json_attributes), "droppedAttributesCount": (None, _uint32),
    "flags": (None, _uint32), "traceId": ("traceId", _hex_id(16)), "spanId": ("spanId", _hex_id(8)),
    "eventName": ("event_name", _text)},
    ("time_unix_nano", "observed_time_unix_nano", "severity_number", "severity_text", "dropped_attributes_count",
     "trace_id", "span_id", "event_name"))
_read_json_scope_items = {
    "traces": _message_reader({"scope": (None, _read_json_scope), "spans": ("items", _repeated(_read_json_span)),
                               "schemaUrl": (None, _text)}, ("schema_url",)),
    "logs": _message_reader({"scope": (None, _read_json_scope),
                             "logRecords": ("items", _repeated(_read_json_record)), "schemaUrl": (None, _text)},
                            ("log_records", "schema_url")),
}
_read_json_resource_items = {
    "traces": _message_reader({"resource": ("resource", _read_json_resource),
                               "scopeSpans": ("scopes", _repeated(_read_json_scope_items["traces"])),
                               "schemaUrl": (None, _text)}, ("scope_spans", "schema_url")),
    "logs": _message_reader({"resource": ("resource", _read_json_resource),
                             "scopeLogs": ("scopes", _repeated(_read_json_scope_items["logs"])),
                             "schemaUrl": (None, _text)}, ("scope_logs", "schema_url")),
}
_read_json_export = {
    "traces": _message_reader({"resourceSpans": ("resources", _repeated(_read_json_resource_items["traces"]))},
                              ("resource_spans",)),
    "logs": _message_reader({"resourceLogs": ("resources", _repeated(_read_json_resource_items["logs"]))},
                            ("resource_logs",)),
}


def _read_json(value: Any, signal: str | None) -> tuple[str, list[dict]]:
    """(signal, the export's spans or log records as plain dicts) from OTLP/JSON."""
    signal = _json_signal(value, signal)
    try:
        export = _read_json_export[signal](value)
    except (_Irregular, RecursionError):
        return _read_message(message_from_json(value, signal))
    items = []
    for resource_items in export.get("resources", ()):
        resource = resource_items.get("resource", {}).get("attributes", {})
        for scope_items in resource_items.get("scopes", ()):
            if signal == "logs":
                items.extend(_plain_record(item, resource) for item in scope_items.get("items", ()))
                continue
            for span in scope_items.get("items", ()):  # read into its plain value already (_new_span)
                span["_resource"] = resource
                items.append(span)
    return signal, items


def _plain_record(kept: dict, resource: dict) -> dict:
    return {
        "event_name": kept.get("event_name", ""),
        "traceId": kept.get("traceId", ""),
        "spanId": kept.get("spanId", ""),
        "time": kept.get("time") or kept.get("observed", 0),
        "body": kept.get("body"),
        "_attributes": kept.get("attributes", {}),
        "_resource": resource,
    }


# --- mapping -----------------------------------------------------------------------------


def map_export_request(request: Any, context: Any = None) -> MappingReport:
    """Contract events for every GenAI span or log event of one OTLP export.

    ``request``: the export's message (traces or logs), its OTLP/JSON form as
    decoded JSON (the signal inferred from the top key), or an ``OtlpJson``
    from ``parse_export`` (the signal the endpoint names). ``context``:
    anything with ``get(trace_id, default)`` giving (conversation_id, user_id)
    learned from earlier spans, used for log events that carry neither.
    Raises ``OtlpFormatError`` (a ``ValueError``) for anything that is not an
    export; never another exception for any JSON input.
    """
    if isinstance(request, Message):
        signal, items = _read_message(request)
    elif isinstance(request, OtlpJson):
        signal, items = _read_json(request.value, request.signal)
    else:
        signal, items = _read_json(request, None)
    if signal == "logs":
        return _map_logs(items, context or {})
    return _map_spans(items)


def _map_spans(spans: list[dict]) -> MappingReport:
    report = MappingReport()
    by_id = {(span["traceId"], span["spanId"]): span for span in spans}
    operations = {key: _operation(span) for key, span in by_id.items()}
    has_chat_below = _agents_with_chat_below(by_id, operations)
    for span in spans:
        key = (span["traceId"], span["spanId"])
        operation = operations.get(key)
        if operation not in GENAI_OPERATIONS:
            report.ignored_spans += 1
            continue
        report.genai_spans += 1
        span_events = _span_events(span, operation, by_id, key in has_chat_below)
        report.events.extend(span_events)
        for event in span_events:
            if event["conversation_id"]:
                report.trace_context.setdefault(span["traceId"], (event["conversation_id"],
                                                                  span_events[0].get("user_id")))
                break
    return report


def _operation(span: dict) -> str | None:
    operation = span["_attributes"].get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        return operation
    first_word = span["name"].split(" ", 1)[0]
    return first_word if first_word in GENAI_OPERATIONS else None


def _agents_with_chat_below(by_id: dict, operations: dict) -> set:
    """Keys of invoke_agent spans that have a chat-like span somewhere below them."""
    found = set()
    for key, operation in operations.items():
        if operation not in CHAT_OPERATIONS:
            continue
        parent = (key[0], by_id[key]["parentSpanId"])
        seen = 0
        while parent in by_id and seen < 256:
            if operations.get(parent) == AGENT_OPERATION:
                found.add(parent)
            parent = (parent[0], by_id[parent]["parentSpanId"])
            seen += 1
    return found


def _inherited(span: dict, by_id: dict, names: tuple[str, ...]) -> Any:
    """The first of ``names`` set on the span or its nearest ancestor in the request."""
    current, seen = span, 0
    while current is not None and seen < 256:
        value = _text_attribute(current["_attributes"], names)
        if value is not None:
            return value
        current = by_id.get((current["traceId"], current["parentSpanId"]))
        seen += 1
    return None


def _text_attribute(attrs: dict, names: tuple[str, ...]) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


# days since the epoch -> "YYYY-MM-DDT": strftime per timestamp is slow, and the events of a
# request share a few days at most
_DAY_TEXT: dict[int, str] = {}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _nanos_text(value: Any) -> str | None:
    """Nanoseconds since the epoch as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``; None when not a usable time."""
    try:
        nanos = int(value)
    except (TypeError, ValueError, OverflowError):
        return None  # no usable time: the event is rejected for its missing timestamp
    if nanos <= 0:
        return None
    seconds, rest = divmod(nanos, 1_000_000_000)
    day, second = divmod(seconds, 86_400)
    prefix = _DAY_TEXT.get(day)
    if prefix is None:
        try:
            prefix = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
        except (ValueError, OverflowError):
            return None  # after year 9999
        if len(_DAY_TEXT) >= 4096:
            _DAY_TEXT.clear()
        _DAY_TEXT[day] = prefix
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}.{rest // 1000:06d}Z"


def _error(attrs: dict, status_code: int, status_message: str) -> str | None:
    """``error.type``, else the message of an ERROR status (or ``error``)."""
    error_type = attrs.get("error.type")
    if error_type not in (None, ""):
        return str(error_type)
    if status_code == _STATUS_ERROR:
        return status_message or "error"
    return None


def _span_events(span: dict, operation: str, by_id: dict, agent_has_chat: bool) -> list[dict]:
    attrs = span["_attributes"]
    trace_id, span_id = span["traceId"], span["spanId"]
    conversation_id = _inherited(span, by_id, _CONVERSATION_KEYS)
    base = {"conversation_id": conversation_id}
    user_id = _inherited(span, by_id, _USER_KEYS)
    if user_id is not None:
        base["user_id"] = user_id
    trace = {"otel_trace_id": trace_id, "otel_span_id": span_id}
    started = _nanos_text(span["startTimeUnixNano"])
    error = _error(attrs, *span["status"])
    events = []

    if operation == TOOL_OPERATION:
        events.append({
            "event_id": _event_id(trace_id, span_id, "tool"),
            **base,
            "event_type": "tool_called",
            "timestamp": started,
            "properties": {"tool_name": attrs.get("gen_ai.tool.name"),
                           "tool_call_id": attrs.get("gen_ai.tool.call.id"), "error": error, **trace},
        })
        return _without_nulls(events)

    if operation == AGENT_OPERATION:
        resource = span["_resource"]
        agent_id = _text_attribute(attrs, ("gen_ai.agent.id", "gen_ai.agent.name")) or resource.get("service.name")
        events.append({
            "event_id": _event_id(str(conversation_id), "", "started"),
            **base,
            "event_type": "conversation_started",
            "timestamp": started,
            "properties": {
                "agent_id": agent_id, "agent_name": attrs.get("gen_ai.agent.name"),
                "environment": _text_attribute(resource, ("deployment.environment.name", "deployment.environment")),
                "service_version": resource.get("service.version"), **trace,
            },
        })
        outcome = attrs.get(OUTCOME_ATTRIBUTE)
        if isinstance(outcome, str) and outcome.lower() in _OUTCOME_EVENTS:
            events.append({
                "event_id": _event_id(str(conversation_id), "", "outcome"),
                **base,
                "event_type": _OUTCOME_EVENTS[outcome.lower()],
                "timestamp": _nanos_text(span["endTimeUnixNano"]) or started,
                "properties": {"error": error, **trace},
            })
        if agent_has_chat:
            return _without_nulls(events)

    user = _user_message(span, input_messages(span), conversation_id, base, started, trace)
    if user is not None:
        events.append(user)
    ended = _nanos_text(span["endTimeUnixNano"]) or started
    agent = _agent_message(span, output_messages(span), base, ended, trace, error)
    if agent is not None:
        events.append(agent)
    return _without_nulls(events)


def _user_message(span: dict, inputs: list[dict], conversation_id, base: dict, at, trace: dict) -> dict | None:
    """The span's last input message when the user wrote it (its id from its text and position)."""
    if not inputs or inputs[-1]["role"] != "user":
        return None
    position = len(inputs) - 1
    content = inputs[-1]["content"]
    digest = hashlib.sha256(f"{conversation_id}|{trace['otel_trace_id']}|{position}|{content}".encode(
        "utf-8", "surrogatepass")).hexdigest()
    return {"event_id": "otel-" + digest[:32], **base, "event_type": "user_message", "timestamp": at,
            "properties": {"content": content, **trace}}


def _agent_message(span: dict, outputs: list[dict], base: dict, at, trace: dict, error) -> dict | None:
    """The model's answer, unless it only asked for tools; model, tokens and latency from the span."""
    attrs = span["_attributes"]
    text = "\n".join(message["content"] for message in outputs if message["content"])
    finish_reasons = {str(reason) for reason in _as_list(attrs.get("gen_ai.response.finish_reasons"))}
    finish_reasons |= {str(message["finish_reason"]) for message in outputs if message.get("finish_reason")}
    if finish_reasons and finish_reasons <= _TOOL_FINISH_REASONS and not text:
        return None
    return {
        "event_id": _event_id(trace["otel_trace_id"], trace["otel_span_id"], "agent"),
        **base,
        "event_type": "agent_message",
        "timestamp": at,
        "properties": {
            "content": text or None,
            "model": _first(attrs, "gen_ai.request.model", "gen_ai.response.model"),
            "response_model": attrs.get("gen_ai.response.model"),
            "input_tokens": _first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
            "output_tokens": _first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
            "cache_read_input_tokens": _first(attrs, "gen_ai.usage.cache_read.input_tokens",
                                              "gen_ai.usage.cache_read_input_tokens"),
            "cache_creation_input_tokens": _first(attrs, "gen_ai.usage.cache_creation.input_tokens",
                                                  "gen_ai.usage.cache_creation_input_tokens"),
            "reasoning_tokens": _first(attrs, "gen_ai.usage.reasoning.output_tokens",
                                       "gen_ai.usage.reasoning_tokens"),
            "latency_ms": _duration_ms(span),
            "provider": _first(attrs, "gen_ai.provider.name", "gen_ai.system"),
            "error": error,
            **trace,
        },
    }


def _without_nulls(events: list[dict]) -> list[dict]:
    for event in events:
        event["properties"] = {key: value for key, value in event["properties"].items() if value is not None}
    return events


# --- log events --------------------------------------------------------------------------

_INPUT_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                 "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
_OUTPUT_EVENTS = {"gen_ai.choice": "assistant"}
_DETAILS_EVENT = "gen_ai.client.inference.operation.details"


def _map_logs(records: list[dict], context: Any) -> MappingReport:
    """GenAI log events, grouped by the span they belong to, as that span's messages."""
    report = MappingReport()
    groups: dict[tuple[str, str], dict] = {}
    for record in records:
        attrs = record["_attributes"]
        name = record["event_name"] or attrs.get("event.name") or ""
        if name not in _INPUT_EVENTS and name not in _OUTPUT_EVENTS and name != _DETAILS_EVENT:
            report.ignored_log_events += 1
            continue
        report.genai_log_events += 1
        key = (record["traceId"], record["spanId"])
        group = groups.setdefault(key, {"inputs": [], "outputs": [], "attrs": {}, "resource": record["_resource"],
                                        "time": None})
        group["attrs"].update(attrs)
        stamp = record["time"]
        group["time"] = stamp if group["time"] is None else min(group["time"], stamp)
        body = record["body"]
        if name == _DETAILS_EVENT:
            group["inputs"].extend(_messages_from(attrs.get("gen_ai.input.messages")))
            group["outputs"].extend(_messages_from(attrs.get("gen_ai.output.messages")))
        elif name in _INPUT_EVENTS:
            group["inputs"].append(_message({"role": _INPUT_EVENTS[name],
                                             **(body if isinstance(body, dict) else {"content": body})}))
        else:
            message = body.get("message") if isinstance(body, dict) else None
            message = message if isinstance(message, dict) else {"content": body}
            finish = body.get("finish_reason") if isinstance(body, dict) else None
            group["outputs"].append(_message({"role": "assistant", **message, "finish_reason": finish}))
    for (trace_id, span_id), group in groups.items():
        attrs, resource = group["attrs"], group["resource"]
        known = context.get(trace_id, (None, None))
        conversation_id = (_text_attribute(attrs, _CONVERSATION_KEYS) or _text_attribute(resource, _CONVERSATION_KEYS)
                           or known[0])
        user_id = _text_attribute(attrs, _USER_KEYS) or _text_attribute(resource, _USER_KEYS) or known[1]
        base = {"conversation_id": conversation_id, **({"user_id": user_id} if user_id is not None else {})}
        trace = {"otel_trace_id": trace_id, "otel_span_id": span_id}
        at = _nanos_text(group["time"])
        span = {"_attributes": attrs, "startTimeUnixNano": 0, "endTimeUnixNano": 0}
        events = []
        user = _user_message(span, group["inputs"], conversation_id, base, at, trace)
        if user is not None:
            events.append(user)
        if group["outputs"]:
            agent = _agent_message(span, group["outputs"], base, at, trace, _error(attrs, 0, ""))
            if agent is not None:
                events.append(agent)
        report.events.extend(_without_nulls(events))
    return report


# --- messages in attributes and span events ----------------------------------------------


def _event_id(trace_id: str, span_id: str, role: str) -> str:
    return "otel-" + hashlib.sha256(f"{trace_id}|{span_id}|{role}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _first(attrs: dict, *names: str) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.startswith("["):
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return [value]
        return decoded if isinstance(decoded, list) else [value]
    return [value]


def _duration_ms(span: dict) -> float | None:
    start, end = span["startTimeUnixNano"], span["endTimeUnixNano"]
    if not start or not end:
        return None
    return round((end - start) / 1e6, 3)


def input_messages(span: dict) -> list[dict]:
    """The span's input messages as ``{"role", "content"}`` (current, older and event forms)."""
    return _messages(span, "gen_ai.input.messages", "gen_ai.prompt", _INPUT_EVENTS)


def output_messages(span: dict) -> list[dict]:
    """The span's output messages as ``{"role", "content", "finish_reason"}``."""
    return _messages(span, "gen_ai.output.messages", "gen_ai.completion", _OUTPUT_EVENTS)


def _messages_from(value: Any) -> list[dict]:
    return [_message(item) for item in _as_list(value) if isinstance(item, dict)]


def _messages(span: dict, current: str, older: str, event_roles: dict[str, str]) -> list[dict]:
    attrs = span["_attributes"]
    for name in (current, older):
        messages = _messages_from(attrs.get(name))
        if messages:
            return messages
    flattened = _flattened(attrs, older)
    if flattened:
        return flattened
    messages = []
    for event in span.get("events") or []:
        role = event_roles.get(event["name"])
        if role is None:
            continue
        event_attrs = event["attributes"]
        message = event_attrs.get("message")
        if isinstance(message, str):
            try:
                message = json.loads(message)
            except (ValueError, RecursionError):
                message = {"content": message}
        if not isinstance(message, dict):
            message = {"content": event_attrs.get("content")}
        messages.append(_message({"role": message.get("role") or role, **message,
                                  "finish_reason": event_attrs.get("finish_reason")}))
    return messages


def _flattened(attrs: dict, prefix: str) -> list[dict]:
    """``gen_ai.prompt.0.role`` / ``gen_ai.prompt.0.content`` style attributes."""
    found: dict[int, dict] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix + "."):
            continue
        index, _, name = key[len(prefix) + 1 :].partition(".")
        if index.isdigit() and name:
            found.setdefault(int(index), {})[name] = value
    return [_message(found[index]) for index in sorted(found)]


def _message(item: dict) -> dict:
    content = item.get("content")
    finish_reason = item.get("finish_reason")
    parts = item.get("parts")
    if content is None and isinstance(parts, list):
        texts = []
        for part in parts:
            if isinstance(part, dict):
                kind = part.get("type", "text")
                if kind == "text":
                    text = part.get("content")
                    if text is not None:
                        texts.append(str(text))
                elif kind == "tool_call":
                    finish_reason = finish_reason or "tool_calls"
        content = "\n".join(texts) or None
    elif isinstance(content, list):
        content = "\n".join(
            str(part.get("text") or part.get("content") or "") if isinstance(part, dict) else str(part)
            for part in content
        ) or None
    elif content is not None and not isinstance(content, str):
        try:
            content = json.dumps(content)
        except (ValueError, TypeError, RecursionError):
            content = str(content)[:10_000]
    if not content and item.get("tool_calls"):
        finish_reason = finish_reason or "tool_calls"
    return {"role": str(item.get("role") or ""), "content": content, "finish_reason": finish_reason}
