"""OTLP span exports built by hand for the GenAI mapping tests (JSON form)."""

from __future__ import annotations

import json

T0 = 1_767_607_200_000_000_000  # 2026-01-05T10:00:00Z in ns
SECOND = 1_000_000_000
TRACE = "5b8efff798038103d269b633813fc60c"


def attr(key: str, value) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, list):
        return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}}}
    return {"key": key, "value": {"stringValue": value}}


def sid(name: str) -> str:
    """A span id (16 hex digits) made from a short readable name."""
    return name.encode().hex().ljust(16, "0")


def span(span_id: str, name: str, start: int, end: int, parent: str = "", trace: str = TRACE, **attrs) -> dict:
    return {
        "traceId": trace, "spanId": sid(span_id), "parentSpanId": sid(parent) if parent else "", "name": name,
        "kind": 1,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
        "attributes": [attr(key.replace("__", "."), value) for key, value in attrs.items()],
    }


def export(*spans: dict) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "support-bot")]},
                               "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]}


def agent_turn(conversation: str = "conv-otel-1", trace: str = TRACE) -> dict:
    """One turn: invoke_agent -> chat (asks for a tool) -> execute_tool -> chat (answers); plus an HTTP span."""
    user = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]}])
    after_tool = json.dumps([
        {"role": "user", "parts": [{"type": "text", "content": "Where is my order?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "lookup_order"}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "response": "shipped"}]},
    ])
    answer = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "It shipped today."}],
                          "finish_reason": "stop"}])
    return export(
        span("a1", "invoke_agent support", T0, T0 + 5 * SECOND, trace=trace, **{
            "gen_ai__operation__name": "invoke_agent", "gen_ai__conversation__id": conversation,
            "gen_ai__agent__id": "agent-7", "user__id": "u-42"}),
        span("c1", "chat gpt-4o", T0 + SECOND // 10, T0 + 2 * SECOND, parent="a1", trace=trace, **{
            "gen_ai__operation__name": "chat", "gen_ai__request__model": "gpt-4o",
            "gen_ai__input__messages": user, "gen_ai__usage__input_tokens": 100,
            "gen_ai__usage__output_tokens": 7, "gen_ai__response__finish_reasons": ["tool_calls"]}),
        span("t1", "execute_tool lookup_order", T0 + 2 * SECOND, T0 + 3 * SECOND, parent="a1", trace=trace, **{
            "gen_ai__operation__name": "execute_tool", "gen_ai__tool__name": "lookup_order"}),
        span("c2", "chat gpt-4o", T0 + 3 * SECOND, T0 + 4500 * SECOND // 1000, parent="a1", trace=trace, **{
            "gen_ai__request__model": "gpt-4o", "gen_ai__input__messages": after_tool,
            "gen_ai__output__messages": answer,
            # the older attribute names
            "gen_ai__usage__prompt_tokens": 130, "gen_ai__usage__completion_tokens": 9}),
        span("h1", "GET /orders", T0 + 2 * SECOND, T0 + 3 * SECOND, parent="t1", trace=trace, **{"http__method": "GET"}),
    )
