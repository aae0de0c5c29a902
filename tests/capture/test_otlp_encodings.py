"""OTLP's two encodings read by the GenAI mapping: protobuf (read from the
parsed message) and OTLP/JSON (read straight from the decoded JSON, with
``json_format`` judging anything that reader does not take itself) give the
same events; and the timestamps the mapping writes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from support.otel_spans import SECOND, T0, TRACE, agent_turn, attr, export, sid, span

from convo_warehouse.lib import otel_genai
from convo_warehouse.lib.otel_genai import (
    OtlpFormatError,
    map_export_request,
    message_from_json,
    parse_export,
)


def spans_with_everything() -> dict:
    """Spans using every field: span events (older message conventions), status by number, links, flags."""
    chat = span("e1", "chat m", T0, T0 + SECOND, **{"gen_ai__conversation__id": "c-ev", "gen_ai__system": "openai",
                                                      "gen_ai__usage__cache_read__input_tokens": 3})
    chat["events"] = [
        {"name": "gen_ai.user.message", "timeUnixNano": str(T0), "attributes": [attr("content", "evt q")]},
        {"name": "gen_ai.choice", "droppedAttributesCount": 0, "attributes": [
            attr("message", json.dumps({"role": "assistant", "content": "evt a"})), attr("finish_reason", "stop")]},
    ]
    chat["status"] = {"code": 2, "message": "boom"}
    chat.update({"flags": 257, "traceState": "k=v", "droppedAttributesCount": 1, "droppedEventsCount": 0,
                 "links": [{"traceId": "ab" * 16, "spanId": sid("zz"), "attributes": [attr("x", 1)], "flags": 1}]})
    tool = span("e2", "execute_tool x", T0, T0 + SECOND, parent="e1", **{"gen_ai__tool__name": "x", "error__type": "E"})
    agent = span("e3", "invoke_agent a", T0, T0 + 2 * SECOND, **{
        "gen_ai__conversation__id": "c-ev2", "convo__outcome": "Completed", "gen_ai__agent__name": "nm"})
    agent["status"] = {"code": "STATUS_CODE_ERROR"}  # by name, as json_format writes enums
    agent["attributes"].append({"key": "odd", "value": {"arrayValue": {"values": [
        {"doubleValue": 1.5}, {"boolValue": True}, {"intValue": -7}, {},
        {"kvlistValue": {"values": [attr("n", "ünï")]}}]}}})
    value = export(chat, tool, agent)
    value["resourceSpans"][0]["schemaUrl"] = "https://opentelemetry.io/schemas/1.30.0"
    value["resourceSpans"][0]["scopeSpans"][0]["scope"].update({"version": "1", "attributes": [attr("a", "b")]})
    return value


def logs_export() -> dict:
    def record(name: str, body: dict, span_id: str, **attrs) -> dict:
        return {"timeUnixNano": str(T0 + 5), "observedTimeUnixNano": str(T0 + 9), "severityNumber": 9,
                "severityText": "INFO", "eventName": name, "traceId": TRACE, "spanId": sid(span_id), "body": body,
                "attributes": [attr(key.replace("__", "."), value) for key, value in attrs.items()]}

    message = {"key": "message", "value": {"kvlistValue": {"values": [attr("content", "hi!")]}}}
    return {"resourceLogs": [{
        "resource": {"attributes": [attr("service.name", "bot"), attr("session.id", "c-log")]},
        "scopeLogs": [{"scope": {"name": "x"}, "logRecords": [
            record("gen_ai.system.message", {"kvlistValue": {"values": [attr("content", "be nice")]}}, "l1"),
            record("gen_ai.user.message", {"kvlistValue": {"values": [attr("content", "hello ünïcode")]}}, "l1"),
            record("gen_ai.choice", {"kvlistValue": {"values": [attr("finish_reason", "stop"), message]}}, "l1"),
            record("gen_ai.user.message", {"stringValue": "plain body"}, "l2", user__id="u9"),
            record("gen_ai.client.inference.operation.details", {}, "l3",
                   gen_ai__input__messages=json.dumps([{"role": "user", "content": "q?"}]),
                   gen_ai__output__messages=json.dumps([{"role": "assistant", "content": "a.",
                                                         "finish_reason": "stop"}]),
                   gen_ai__request__model="m1", gen_ai__usage__input_tokens=5, error__type="timeout"),
            {"timeUnixNano": "0", "observedTimeUnixNano": str(T0), "attributes": [attr("event.name", "gen_ai.choice")],
             "traceId": TRACE, "spanId": sid("l4"),
             "body": {"arrayValue": {"values": [{"doubleValue": 2}, {"boolValue": False}, {"intValue": "7"}]}}},
            {"eventName": "other.event", "body": {"stringValue": "x"}},
        ]}]}]}


EXPORTS = {"agent turn": (agent_turn(), "traces"), "every span field": (spans_with_everything(), "traces"),
           "log events": (logs_export(), "logs")}


def outcome(report) -> tuple:
    return (report.events, report.genai_spans, report.ignored_spans, report.genai_log_events,
            report.ignored_log_events, report.trace_context)


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_protobuf_and_json_bodies_of_the_same_export_give_the_same_events(name: str, monkeypatch):
    value, signal = EXPORTS[name]
    protobuf = message_from_json(value, signal).SerializeToString()
    from_protobuf = outcome(map_export_request(parse_export(protobuf, "application/x-protobuf", signal)))
    assert from_protobuf[0], "the export maps to events"

    def not_needed(*args):
        raise AssertionError("read through json_format: the direct JSON reader gave up on a regular export")

    # the JSON is read directly (json_format is not consulted) and gives the same events
    monkeypatch.setattr(otel_genai, "message_from_json", not_needed)
    from_json = outcome(map_export_request(parse_export(json.dumps(value).encode(), "application/json", signal)))
    assert from_json == from_protobuf
    assert outcome(map_export_request(value)) == from_protobuf  # a landing file's line: the signal inferred


def _nested(depth: int, leaf: dict) -> dict:
    """``leaf`` (an AnyValue) at the bottom of ``depth`` key-value lists, one inside the other."""
    for _ in range(depth):
        leaf = {"kvlistValue": {"values": [{"key": "k", "value": leaf}]}}
    return leaf


@pytest.mark.parametrize("depth", [0, 1, 2, 16, 17])
def test_attribute_values_of_every_kind_at_any_depth_read_from_json_as_from_protobuf(depth: int, monkeypatch):
    # strings are read in place by the direct reader, other values through its general rule: the same values
    value = agent_turn()
    agent = next(s for s in value["resourceSpans"][0]["scopeSpans"][0]["spans"] if s["name"].startswith("invoke"))
    agent["attributes"].append({"key": "gen_ai.agent.name", "value": _nested(depth, {"arrayValue": {"values": [
        {"stringValue": "plain"}, {"stringValue": "ünïcode"}, {"stringValue": ""}, {"intValue": "-7"},
        {"boolValue": True}, {"doubleValue": 0.5}, {}, _nested(2, {"stringValue": "inner"})]}})})
    value["resourceSpans"][0]["resource"]["attributes"].append(
        {"key": "deployment.environment.name", "value": _nested(depth, {"stringValue": "prød"})})
    protobuf = message_from_json(value, "traces").SerializeToString()
    from_protobuf = outcome(map_export_request(parse_export(protobuf, "application/x-protobuf", "traces")))
    started = next(e for e in from_protobuf[0] if e["event_type"] == "conversation_started")
    assert "agent_name" in started["properties"] and "environment" in started["properties"]

    def not_needed(*args):
        raise AssertionError("read through json_format: the direct JSON reader gave up on a regular export")

    monkeypatch.setattr(otel_genai, "message_from_json", not_needed)
    assert outcome(map_export_request(parse_export(json.dumps(value).encode(), "application/json", "traces"))) \
        == from_protobuf


@pytest.mark.parametrize("leaf", [{"stringValue": "deep"}, {"intValue": "5"}])
def test_attribute_values_deeper_than_the_direct_reader_goes_are_left_to_json_format(leaf: dict):
    """The direct reader reads values 32 key-value lists deep; below that json_format judges (and refuses)."""
    def mapped(depth: int):
        value = agent_turn()
        value["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
            {"key": "deep", "value": _nested(depth, leaf)})
        return map_export_request(parse_export(json.dumps(value).encode(), "application/json", "traces"))

    assert mapped(32).events
    with pytest.raises(OtlpFormatError, match="nested more than 64 levels deep"):
        mapped(33)


def test_json_the_direct_reader_does_not_take_is_read_by_json_format():
    # bytes values, snake_case keys, an int64 as a float: valid OTLP/JSON the direct reader leaves to json_format
    value = logs_export()
    records = value["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    records[3]["body"] = {"bytesValue": "aGk="}
    records[3]["observed_time_unix_nano"] = records[3].pop("observedTimeUnixNano")
    records[4]["attributes"][-1] = {"key": "error.type", "value": {"intValue": 5.0}}
    events = map_export_request(value).events
    assert events == map_export_request(message_from_json(value)).events
    by_span = {(e["properties"]["otel_span_id"], e["event_type"]): e for e in events}
    assert by_span[(sid("l2"), "user_message")]["properties"]["content"] == "aGk="
    assert by_span[(sid("l3"), "agent_message")]["properties"]["error"] == "5"


ODD_VALUES = [None, "x", "", "12", "-3", "1e3", "7.0", " 5", "١٢", 1.5, 2.0, 0, -1, 2**31, 2**32, 2**63, 2**64,
              10**400, True, [], {}, [None], "\ud800", "STATUS_CODE_ERROR", "SPAN_KIND_SERVER", "0" * 32, "AB" * 8,
              "ab" * 16 + "\n"]


def _paths(value, path=()):
    """Every (path to a dict, key) in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _at(value, path):
    for step in path:
        value = value[step]
    return value


def _result(read) -> tuple:
    try:
        return ("events", outcome(read()))
    except OtlpFormatError as error:
        return ("error", str(error))


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_any_changed_value_is_read_as_json_format_reads_it(name: str):
    """Every key of the export given each odd value (and its snake_case name): the result, events or the
    error, is the one of the message json_format builds from the same JSON."""
    base, signal = EXPORTS[name]
    taken_directly = 0
    for path, key in list(_paths(base)):
        variants = [("value", odd) for odd in ODD_VALUES]
        snake = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower() if isinstance(key, str) else key
        if snake != key:
            variants.append(("rename", snake))
        for kind, replacement in variants:
            changed = json.loads(json.dumps(base))
            holder = _at(changed, path)
            if kind == "value":
                holder[key] = replacement
            else:
                holder[replacement] = holder.pop(key)
            direct = _result(lambda: map_export_request(otel_genai.OtlpJson(changed, signal)))

            def through_json_format():
                return map_export_request(message_from_json(changed, signal))
            assert direct == _result(through_json_format), (path, key, kind, replacement)
            taken_directly += direct[0] == "events"
    assert taken_directly > 100  # the direct reader's own conversions were compared, not only its fall-back


def _reference_nanos_text(nanos: int) -> str | None:
    """The timestamp text as datetime writes it (what the mapping wrote before it cached days)."""
    if nanos <= 0:
        return None
    seconds, rest = divmod(nanos, 1_000_000_000)
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{rest // 1000:06d}Z"
    except (ValueError, OverflowError, OSError):
        return None


def test_timestamps_are_written_as_datetime_writes_them():
    import random

    year_10000 = 253_402_300_800 * 10**9
    values = [1, 999, 10**9 - 1, 10**9, T0, T0 + 123_456_789, 951_782_400 * 10**9 + 1,  # 2000-02-29
              year_10000 - 1, year_10000, 2**63 - 1, 2**64 - 1, 10**30, 0, -5]
    rng = random.Random(29)
    values += [rng.randrange(1, year_10000 + 10**12) for _ in range(2000)]
    for value in values:
        assert otel_genai._nanos_text(value) == _reference_nanos_text(value), value
    assert otel_genai._nanos_text("x") is None and otel_genai._nanos_text(None) is None
