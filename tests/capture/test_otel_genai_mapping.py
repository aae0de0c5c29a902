"""OpenTelemetry GenAI spans -> contract events: the pure mapping, the loader's
``*.otlp.jsonl`` files, and the collector's ``POST /v1/traces``."""

from __future__ import annotations

import json
from pathlib import Path

from support.capture import CollectorProcess, wait_for

from convo_warehouse.lib.otel_genai import map_export_request

from support.otel_spans import SECOND, T0, TRACE, agent_turn, export, sid, span


def test_agent_turn_maps_to_contract_events():
    report = map_export_request(agent_turn())
    assert report.genai_spans == 4 and report.ignored_spans == 1
    events = sorted(report.events, key=lambda e: (e["timestamp"], e["event_type"]))
    assert [(e["event_type"], e["timestamp"]) for e in events] == [
        ("conversation_started", "2026-01-05T10:00:00.000000Z"),
        ("user_message", "2026-01-05T10:00:00.100000Z"),
        ("tool_called", "2026-01-05T10:00:02.000000Z"),
        ("agent_message", "2026-01-05T10:00:04.500000Z"),
    ]
    assert {e["conversation_id"] for e in events} == {"conv-otel-1"}
    assert {e["user_id"] for e in events} == {"u-42"}
    started, user, tool, agent = events
    assert started["properties"]["agent_id"] == "agent-7"
    assert user["properties"]["content"] == "Where is my order?"
    assert tool["properties"]["tool_name"] == "lookup_order"
    assert agent["properties"] == {
        "content": "It shipped today.", "model": "gpt-4o", "input_tokens": 130, "output_tokens": 9,
        "latency_ms": 1500.0, "otel_trace_id": TRACE, "otel_span_id": sid("c2"),
    }


def test_mapping_is_deterministic_and_inherits_nothing_it_cannot_find():
    first = map_export_request(agent_turn()).events
    assert [e["event_id"] for e in first] == [e["event_id"] for e in map_export_request(agent_turn()).events]
    orphan = map_export_request(export(span("x", "chat m", T0, T0 + SECOND, **{"gen_ai__request__model": "m"})))
    assert len(orphan.events) == 1 and orphan.events[0]["conversation_id"] is None


def test_older_flattened_prompt_attributes():
    report = map_export_request(export(span("s", "chat m", T0, T0 + SECOND, **{
        "gen_ai__operation__name": "chat", "session__id": "c-old", "gen_ai__response__model": "m-2024",
        "gen_ai__prompt__0__role": "system", "gen_ai__prompt__0__content": "be brief",
        "gen_ai__prompt__1__role": "user", "gen_ai__prompt__1__content": "hi",
        "gen_ai__completion__0__role": "assistant", "gen_ai__completion__0__content": "hello"})))
    kinds = {e["event_type"]: e for e in report.events}
    assert kinds["user_message"]["properties"]["content"] == "hi"
    assert kinds["agent_message"]["properties"]["content"] == "hello"
    assert kinds["agent_message"]["properties"]["model"] == "m-2024"


def test_otlp_files_and_traces_endpoint_reach_stg_events(warehouse, tmp_path: Path):
    # one export as a landing file (with an unreadable line), one through the collector
    (warehouse.landing / "otel").mkdir()
    (warehouse.landing / "otel" / "traces.otlp.jsonl").write_text(
        json.dumps(agent_turn("conv-file")) + "\n{not json\n")
    collector = CollectorProcess(warehouse.landing, None, "", "--rotate-seconds", "0.2").start()
    try:
        body = json.dumps(agent_turn("conv-http", trace="aa" * 16)).encode()
        status, answer, _ = collector.post("/v1/traces", body)
        assert status == 200 and answer == {}
        orphan = json.dumps(export(span("x", "chat m", T0, T0 + SECOND, trace="bb" * 16))).encode()
        status, answer, _ = collector.post("/v1/traces", orphan)
        assert answer["partialSuccess"]["rejectedSpans"] == "1"
        assert "conversation_id" in answer["partialSuccess"]["errorMessage"]
        wait_for(lambda: list((warehouse.landing / "collector").rglob("*.jsonl")), 10, "a collector file")
    finally:
        collector.stop()
    warehouse.load()
    warehouse.build("+stg_events +rejected_events")
    rows = warehouse.query(
        "select conversation_id, event_type, model, input_tokens, output_tokens from staging.stg_events "
        "order by conversation_id, event_at")
    for conversation in ("conv-file", "conv-http"):
        assert [r[1:] for r in rows if r[0] == conversation] == [
            ("conversation_started", None, None, None),
            ("user_message", None, None, None),
            ("tool_called", None, None, None),
            ("agent_message", "gpt-4o", 130, 9),
        ]
    reasons = warehouse.query("select source_file, reason from quarantine.rejected_events")
    assert reasons == [("otel/traces.otlp.jsonl", "unreadable_line")]


MALFORMED = [
    "x", 7, None, [], ["x"],  # not an object
    {},  # neither resourceSpans nor resourceLogs
    {"resourceSpans": "x"}, {"resourceSpans": ["x"]}, {"resourceSpans": [None]},
    {"resourceSpans": [{"resource": "x"}]},
    {"resourceSpans": [{"resource": {"attributes": "x"}}]},
    {"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": "x"}]}}]},
    {"resourceSpans": [{"scopeSpans": {"spans": []}}]}, {"resourceSpans": [{"scopeSpans": [5]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": "x"}]}]}, {"resourceSpans": [{"scopeSpans": [{"spans": [[]]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]},  # not hex
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": 5}]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "k", "value": {"intValue": "x"}}]}]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"events": "x"}]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"status": {"code": "broken"}}]}]}]},
    {"resourceLogs": [{"scopeLogs": [{"logRecords": ["x"]}]}]},
    {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": "x"}]}]}]},
    {"resourceSpans": [], "resourceLogs": []},  # which one?
    # a double beyond float range (json_format raised OverflowError, which escaped as a 500)
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "k",
                                                                    "value": {"doubleValue": 10**400}}]}]}]}]},
    # an enum name that is not UTF-8 text (upb's lookup raised SystemError, a 500)
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "\ud800"}]}]}]},
]


def test_malformed_exports_raise_only_the_documented_error_naming_the_place():
    from convo_warehouse.lib.otel_genai import OtlpFormatError

    for value in MALFORMED:
        try:
            map_export_request(value)
        except OtlpFormatError as error:
            assert "OTLP" in str(error) or "JSON" in str(error), (value, error)
        else:
            raise AssertionError(f"{value!r} was taken as an export")
    try:
        map_export_request({"resourceSpans": ["x"]})
    except OtlpFormatError as error:
        assert "resourceSpans[0] must be an object" in str(error)


def test_values_of_the_wrong_kind_inside_a_valid_export_never_raise():
    odd = export(
        span("o1", "invoke_agent a", T0, T0 + SECOND, **{"gen_ai__conversation__id": "c-odd",
                                                        "convo__outcome": "maybe"}),
        span("o2", "chat m", T0, 2**63 - 1, parent="o1", **{  # an end far past year 9999
            "gen_ai__input__messages": "[not json", "gen_ai__output__messages": "[" * 5000,
            "gen_ai__usage__input_tokens": "many", "gen_ai__response__finish_reasons": "stop"}),
    )
    events = {e["event_type"]: e for e in map_export_request(odd).events}
    assert set(events) == {"conversation_started", "agent_message"}
    assert events["agent_message"]["timestamp"].startswith("2262-")  # staging rejects it: future_timestamp
    assert events["agent_message"]["properties"]["input_tokens"] == "many"


def test_the_loader_quarantines_a_malformed_otlp_line_and_keeps_the_rest(tmp_path: Path):
    from convo_warehouse.lib.landing.otlp import READER

    path = tmp_path / "mixed.otlp.jsonl"
    path.write_text(json.dumps({"resourceSpans": ["x"]}) + "\n" + json.dumps(agent_turn("conv-mixed")) + "\n")
    rows = list(READER.rows(path))
    errors = [row.parse_error for row in rows if row.parse_error]
    assert len(errors) == 1 and "resourceSpans[0] must be an object" in errors[0]
    assert [row.values.get("conversation_id") for row in rows].count("conv-mixed") == 4
