"""One marker language: the collector's Python evaluator (lib/live/markers.py) and the warehouse's SQL
(macros/funnels, int_conversation_markers_evaluated) reach the same markers, at the same times, for
the same conversations; and the live extensions are refused by neither silently."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from support.warehouse import Warehouse
from convo_warehouse.lib.live.events import LiveEvent
from convo_warehouse.lib.live.markers import Conversation, EventView, Program, RuleError

REPO_ROOT = Path(__file__).resolve().parents[2]
# staging's property columns (macros/staging/event_properties.sql: a test below proves them equal)
PROPERTY_COLUMNS = (
    "device", "source", "language", "environment", "page_url", "agent_id", "content", "intent", "model", "tool_name",
    "topic", "reason", "rating", "comment", "goal", "funnel", "stage", "test_name", "variant", "button", "flow_name",
    "sender", "lead_score", "intent_confidence", "sentiment", "latency_ms", "turn", "message_length",
    "response_length", "total_turns", "abandoned_at_turn", "input_tokens", "output_tokens",
)
MARKERS = {
    "asked_for_refund": {"rule": {"at_least_once": {"event_type": "user_message",
                                                    "text": {"matches": "refund|money back|reimburse"}}}},
    "apologised_then_abandoned": {"rule": {"seq": [
        {"and": [{"event_type": "agent_message"}, {"text": {"matches": "sorry|apologi[sz]e"}}]},
        {"event_type": "conversation_abandoned"}]}},
    "completed_without_handoff": {"rule": {"and": [{"at_least_once": {"event_type": "conversation_completed"}},
                                                   {"never": {"event_type": "handoff_requested"}}]}},
    "hot_lead": {"rule": {"or": [
        {"at_least_once": {"event_type": "conversation_started", "property": {"name": "lead_score", "gte": 70}}},
        {"at_least_once": {"event_type": "conversion", "property": {"name": "goal", "equals": "demo_booked"}}}]}},
    "no_fallback": {"rule": {"not": {"at_least_once": {"event_type": "fallback_triggered"}}}},
    "three_steps": {"rule": {"seq": [{"event_type": "user_message"},
                                     {"event_type": ["agent_message", "tool_called"], "text": {"contains": "ORDER"}},
                                     {"event_type": "user_message"}]}},
    "property_kinds": {"rule": {"or": [
        {"at_least_once": {"property": {"name": "intent", "in": ["refund", "cancel"]}}},
        {"at_least_once": {"property": {"name": "sentiment", "lt": -0.5}}},
        {"at_least_once": {"property": {"name": "rating", "equals": 5}}},
        {"at_least_once": {"property": {"name": "tool_name", "matches": "^LOOKUP"}}}]}},
    "exists_and_not_equals": {"rule": {"and": [
        {"at_least_once": {"property": {"name": "model", "exists": True}}},
        {"at_least_once": {"and": [{"event_type": "user_message"},
                                   {"property": {"name": "intent", "not_equals": "greeting"}}]}},
        {"never": {"property": {"name": "reason", "exists": True}}}]}},
    "bare_condition": {"rule": {"event_type": "button_clicked", "property": {"name": "button",
                                                                             "not_equals": "Talk to sales"}}},
    "nested_or_times": {"rule": {"or": [{"seq": [{"event_type": "fallback_triggered"},
                                                 {"event_type": "fallback_triggered"}]},
                                        {"and": [{"at_least_once": {"event_type": "conversion"}},
                                                 {"not": {"at_least_once": {"event_type": "tool_called"}}}]}]}},
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, dbt_target_dir) -> Warehouse:
    from convo_warehouse.lib.generate import generate_events

    built = Warehouse(tmp_path_factory.mktemp("markers"), dbt_target_dir)
    shutil.rmtree(built.landing)
    generate_events(built.landing, conversations=600, days=3, seed=31, end_date="2024-05-10", progress=False)
    built.load()
    built.build("+int_conversation_markers_evaluated", "--vars", json.dumps({"funnel_markers": MARKERS}))
    return built


def test_python_and_sql_reach_the_same_markers_at_the_same_times(warehouse):
    program = Program(live=False)
    compiled = {name: program.compile(marker["rule"], name) for name, marker in MARKERS.items()}
    events: dict[str, list[LiveEvent]] = {}
    # the properties as staging read them: the stored object, and the fields it left out because
    # their columns hold them, as the columns' text (test_each_property_reads_back_as_sent)
    columns = [name for name in PROPERTY_COLUMNS if name not in ("funnel", "stage")]
    texts = ", ".join(f"cast({name} as varchar)" for name in columns)
    for row in warehouse.query(
        f"select event_id, conversation_id, event_type, is_known_type, event_at, properties, content, {texts} "
        "from staging.stg_events where conversation_id is not null order by event_at, event_id"
    ):
        event_id, conversation_id, event_type, known, event_at, properties, content = row[:7]
        sent = json.loads(properties or "{}")
        for name, text in zip(columns, row[7:], strict=True):
            if name not in sent and text is not None:
                sent[name] = text
        events.setdefault(conversation_id, []).append(LiveEvent(
            event_id, conversation_id, None, event_type, known, event_at, None, sent, content, None))
    python: set[tuple[str, str, datetime | None]] = set()
    for conversation_id, items in events.items():
        known = [item for item in items if item.is_known_type]
        if not known:
            continue
        view = Conversation([item.key for item in known], [program.event_bits(EventView(item)) for item in known],
                            [0] * len(known))
        for name, node in compiled.items():
            outcome = node.evaluate(view)
            if outcome.holds:
                python.add((conversation_id, name, outcome.at))
    sql = set(warehouse.query("select conversation_id, marker_name, reached_at from "
                              "intermediate.int_conversation_markers_evaluated"))
    reached_by_marker = {name: sum(1 for row in sql if row[1] == name) for name in MARKERS}
    # every marker is reached by some conversations and missed by others: the comparison means something
    assert all(0 < count < len(events) for count in reached_by_marker.values()), reached_by_marker
    assert python == sql, (sorted(python - sql)[:5], sorted(sql - python)[:5])


def test_each_property_reads_back_as_sent(warehouse):
    """What a marker reads of a property (the stored object's text, else its column's:
    funnel_marker_property_sql) is the text of the properties as the loader read them, for every
    property with a column (but funnel and stage, which an event type alias overrides)."""
    macro = (REPO_ROOT / "macros" / "staging" / "event_properties.sql").read_text()
    listed = re.findall(r"'(\w+)'", macro[macro.index("return({"):macro.index("'kept'")])
    assert sorted(PROPERTY_COLUMNS) == sorted(set(listed) - {"text", "number", "integer"})
    columns = [name for name in PROPERTY_COLUMNS if name not in ("funnel", "stage")]
    differences = warehouse.query(" union all ".join(
        f"select '{name}', stg_events.event_id from staging.stg_events "
        "inner join raw.events as raw_events using (load_id, source_file, row_number) "
        "where json_type(raw_events.properties) = 'OBJECT' and "
        f"coalesce(json_extract_string(stg_events.properties, '$.{name}'), cast(stg_events.{name} as varchar)) "
        f"is distinct from json_extract_string(raw_events.properties, '$.{name}')"
        for name in columns
    ))
    assert differences == []
    # and the object left out what its columns hold
    (left_out,) = warehouse.query(
        "select count(*) from staging.stg_events where content is not null and properties not like '%\"content\"%'"
    )[0]
    assert left_out > 1000


@pytest.mark.parametrize(("rule", "message"), [
    ({"stage": "greeted"}, "unknown event condition 'stage'"),  # live only, as in the SQL
    ({"at_least_once": {"sentiment": {"lt": 0}}}, "unknown event condition 'sentiment'"),
    ({"seq": []}, "seq needs a non-empty list"),
    ({"at_least_once": {"property": {"name": "x y", "equals": 1}}}, "property name must be"),
    ({"at_least_once": {"text": {"matches": "("}}}, "invalid regular expression"),
    ({"and": [{"at_least_once": {"event_type": "x"}}], "or": []}, "one operator per mapping"),
    ({"event_type": "x", "not": {"event_type": "y"}}, "one operator per mapping"),  # as the SQL refuses it
])
def test_malformed_rules_name_the_rule_and_the_problem(rule, message):
    with pytest.raises(RuleError, match=message) as error:
        Program(live=False).compile(rule, "my_marker")
    assert "my_marker" in str(error.value)


def test_live_extensions_compile_for_interventions():
    program = Program(live=True)
    node = program.compile({"and": [{"stage": "greeted"}, {"count": {"of": {"event_type": "user_message"},
                                                                     "at_least": 2}},
                                    {"consecutive_turns": {"of": {"sentiment": {"lte": -0.1}}, "count": 2}}]}, "r")
    assert node.reads_stages() and node.reads_turns()
    with pytest.raises(RuleError, match="stage must be one of"):
        program.compile({"stage": "paid"}, "r")
    with pytest.raises(RuleError, match="at least 1"):
        program.compile({"count": {"of": {"event_type": "x"}, "at_least": 0}}, "r")
