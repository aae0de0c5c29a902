"""OpenTelemetry GenAI spans -> contract events (pure: no I/O, no Dagster, no DuckDB).

Input is an OTLP/JSON ``ExportTraceServiceRequest`` (``{"resourceSpans": [...]}``),
as sent to the collector's ``POST /v1/traces`` or written one per line into a
``*.otlp.jsonl`` landing file. Spans are read per the GenAI semantic
conventions, current and older attribute names alike:

* ``execute_tool`` -> ``tool_called`` (``gen_ai.tool.name``), at the span start.
* ``chat`` / ``text_completion`` / ``generate_content`` (and ``invoke_agent``
  with no such span below it in the request) ->
  - ``user_message`` at the span start, when the last input message has role
    ``user`` (the user just spoke; a step after a tool result does not repeat it);
  - ``agent_message`` at the span end with ``model``, ``input_tokens``,
    ``output_tokens``, ``latency_ms`` (span duration) and the output text, unless
    the model only asked for tools (finish reasons all tool calls, no text):
    that step is not a message to the user.
* ``invoke_agent`` -> ``conversation_started`` carrying ``agent_id``
  (``gen_ai.agent.id`` or ``gen_ai.agent.name``); one per conversation, since
  its ``event_id`` is derived from the conversation id.

``conversation_id`` is ``gen_ai.conversation.id`` (or ``session.id``) of the span
or its nearest ancestor in the request; ``user_id`` likewise from ``user.id`` /
``enduser.id``. A GenAI span with none still becomes an event, which staging
(and the collector) quarantine for the missing field: nothing is dropped
silently. Spans of other kinds (HTTP, database, ...) are ignored and counted.

Event ids are deterministic (trace id, span id, role), so exporting the same
spans twice yields duplicates that staging drops.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
AGENT_OPERATION = "invoke_agent"
TOOL_OPERATION = "execute_tool"
GENAI_OPERATIONS = CHAT_OPERATIONS | {AGENT_OPERATION, TOOL_OPERATION}
_TOOL_FINISH_REASONS = frozenset({"tool_calls", "tool_call", "tool_use", "function_call"})


@dataclass
class MappingReport:
    """What a mapping did: events made, and spans that were not GenAI spans."""

    events: list[dict] = field(default_factory=list)
    genai_spans: int = 0
    ignored_spans: int = 0


def any_value(value: dict | None) -> Any:
    """An OTLP/JSON ``AnyValue`` as a plain Python value."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(item) for item in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attributes(items: list[dict] | None) -> dict[str, Any]:
    return {item.get("key"): any_value(item.get("value")) for item in items or [] if isinstance(item, dict)}


def map_export_request(request: Any) -> MappingReport:
    """Contract events for every GenAI span of one OTLP/JSON trace export."""
    if not isinstance(request, dict) or not isinstance(request.get("resourceSpans", []), list):
        raise ValueError("not an OTLP/JSON trace export: expected an object with a resourceSpans list")
    spans: list[dict] = []
    for resource_spans in request.get("resourceSpans") or []:
        resource = attributes(((resource_spans or {}).get("resource") or {}).get("attributes"))
        for scope_spans in (resource_spans or {}).get("scopeSpans") or []:
            for span in (scope_spans or {}).get("spans") or []:
                if isinstance(span, dict):
                    spans.append({**span, "_attributes": attributes(span.get("attributes")),
                                  "_resource": resource})
    report = MappingReport()
    by_id = {(span.get("traceId"), span.get("spanId")): span for span in spans}
    operations = {key: _operation(span) for key, span in by_id.items()}
    has_chat_below = _agents_with_chat_below(by_id, operations)
    for span in spans:
        key = (span.get("traceId"), span.get("spanId"))
        operation = operations.get(key)
        if operation not in GENAI_OPERATIONS:
            report.ignored_spans += 1
            continue
        report.genai_spans += 1
        report.events.extend(_span_events(span, operation, by_id, key in has_chat_below))
    return report


def _operation(span: dict) -> str | None:
    operation = span["_attributes"].get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        return operation
    first_word = str(span.get("name") or "").split(" ", 1)[0]
    return first_word if first_word in GENAI_OPERATIONS else None


def _agents_with_chat_below(by_id: dict, operations: dict) -> set:
    """Keys of invoke_agent spans that have a chat-like span somewhere below them."""
    found = set()
    for key, operation in operations.items():
        if operation not in CHAT_OPERATIONS:
            continue
        parent = (key[0], by_id[key].get("parentSpanId"))
        seen = 0
        while parent in by_id and seen < 256:
            if operations.get(parent) == AGENT_OPERATION:
                found.add(parent)
            parent = (parent[0], by_id[parent].get("parentSpanId"))
            seen += 1
    return found


def _inherited(span: dict, by_id: dict, names: tuple[str, ...]) -> Any:
    """The first of ``names`` set on the span or its nearest ancestor in the request."""
    current, seen = span, 0
    while current is not None and seen < 256:
        for name in names:
            value = current["_attributes"].get(name)
            if value not in (None, ""):
                return value
        current = by_id.get((current.get("traceId"), current.get("parentSpanId")))
        seen += 1
    return None


def _nanos_text(value: Any) -> str | None:
    try:
        nanos = int(value)
    except (TypeError, ValueError):
        return None
    if nanos <= 0:
        return None
    seconds, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{rest // 1000:06d}Z"


def _span_events(span: dict, operation: str, by_id: dict, agent_has_chat: bool) -> list[dict]:
    attrs = span["_attributes"]
    trace_id, span_id = span.get("traceId") or "", span.get("spanId") or ""
    conversation_id = _inherited(span, by_id, ("gen_ai.conversation.id", "session.id"))
    base = {"conversation_id": conversation_id}
    user_id = _inherited(span, by_id, ("user.id", "enduser.id"))
    if user_id is not None:
        base["user_id"] = user_id
    trace = {"otel_trace_id": trace_id, "otel_span_id": span_id}
    started = _nanos_text(span.get("startTimeUnixNano"))
    ended = _nanos_text(span.get("endTimeUnixNano")) or started
    events = []

    if operation == TOOL_OPERATION:
        events.append({
            "event_id": _event_id(trace_id, span_id, "tool"),
            **base,
            "event_type": "tool_called",
            "timestamp": started,
            "properties": {"tool_name": attrs.get("gen_ai.tool.name"),
                           "tool_call_id": attrs.get("gen_ai.tool.call.id"), **trace},
        })
        return events

    if operation == AGENT_OPERATION:
        agent_id = attrs.get("gen_ai.agent.id") or attrs.get("gen_ai.agent.name")
        events.append({
            "event_id": _event_id(str(conversation_id), "", "started"),
            **base,
            "event_type": "conversation_started",
            "timestamp": started,
            "properties": {"agent_id": agent_id, "agent_name": attrs.get("gen_ai.agent.name"), **trace},
        })
        if agent_has_chat:
            return events

    inputs = input_messages(span)
    if inputs and inputs[-1]["role"] == "user":
        position = len(inputs) - 1
        content = inputs[-1]["content"]
        digest = hashlib.sha256(f"{conversation_id}|{trace_id}|{position}|{content}".encode()).hexdigest()
        events.append({
            "event_id": "otel-" + digest[:32],
            **base,
            "event_type": "user_message",
            "timestamp": started,
            "properties": {"content": content, **trace},
        })

    outputs = output_messages(span)
    text = "\n".join(message["content"] for message in outputs if message["content"])
    finish_reasons = {str(reason) for reason in _as_list(attrs.get("gen_ai.response.finish_reasons"))}
    finish_reasons |= {message["finish_reason"] for message in outputs if message.get("finish_reason")}
    only_tools = bool(finish_reasons) and finish_reasons <= _TOOL_FINISH_REASONS and not text
    if not only_tools:
        input_tokens = _first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
        output_tokens = _first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
        events.append({
            "event_id": _event_id(trace_id, span_id, "agent"),
            **base,
            "event_type": "agent_message",
            "timestamp": ended,
            "properties": {
                "content": text or None,
                "model": _first(attrs, "gen_ai.request.model", "gen_ai.response.model"),
                "response_model": attrs.get("gen_ai.response.model"),
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "latency_ms": _duration_ms(span),
                "provider": _first(attrs, "gen_ai.provider.name", "gen_ai.system"),
                **trace,
            },
        })
    for event in events:
        event["properties"] = {key: value for key, value in event["properties"].items() if value is not None}
    return events


def _event_id(trace_id: str, span_id: str, role: str) -> str:
    return "otel-" + hashlib.sha256(f"{trace_id}|{span_id}|{role}".encode()).hexdigest()[:32]


def _first(attrs: dict, *names: str) -> Any:
    for name in names:
        if attrs.get(name) not in (None, ""):
            return attrs[name]
    return None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.startswith("["):
        try:
            decoded = json.loads(value)
        except ValueError:
            return [value]
        return decoded if isinstance(decoded, list) else [value]
    return [value]


def _duration_ms(span: dict) -> float | None:
    try:
        return round((int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6, 3)
    except (KeyError, TypeError, ValueError):
        return None


def input_messages(span: dict) -> list[dict]:
    """The span's input messages as ``{"role", "content"}`` (current, older and event forms)."""
    return _messages(span, "gen_ai.input.messages", "gen_ai.prompt",
                     {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                      "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"})


def output_messages(span: dict) -> list[dict]:
    """The span's output messages as ``{"role", "content", "finish_reason"}``."""
    return _messages(span, "gen_ai.output.messages", "gen_ai.completion", {"gen_ai.choice": "assistant"})


def _messages(span: dict, current: str, older: str, event_roles: dict[str, str]) -> list[dict]:
    attrs = span["_attributes"]
    for name in (current, older):
        value = _as_list(attrs.get(name)) if attrs.get(name) is not None else None
        if value:
            return [_message(item) for item in value if isinstance(item, dict)]
    flattened = _flattened(attrs, older)
    if flattened:
        return flattened
    messages = []
    for event in span.get("events") or []:
        role = event_roles.get((event or {}).get("name"))
        if role is None:
            continue
        event_attrs = attributes(event.get("attributes"))
        message = event_attrs.get("message")
        if isinstance(message, str):
            try:
                message = json.loads(message)
            except ValueError:
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
    if content is None and isinstance(item.get("parts"), list):
        content = "\n".join(
            str(part.get("content"))
            for part in item["parts"]
            if isinstance(part, dict) and part.get("type", "text") == "text" and part.get("content") is not None
        ) or None
        if any(isinstance(part, dict) and part.get("type") == "tool_call" for part in item["parts"]):
            item = {**item, "finish_reason": item.get("finish_reason") or "tool_calls"}
    elif isinstance(content, list):
        content = "\n".join(
            str(part.get("text") or part.get("content") or "") if isinstance(part, dict) else str(part)
            for part in content
        ) or None
    elif content is not None and not isinstance(content, str):
        content = json.dumps(content)
    return {"role": str(item.get("role") or ""), "content": content,
            "finish_reason": item.get("finish_reason")}
