"""Each event is stored once: base_events_parsed is the one parsed copy and
decides first delivery load run by load run; stg_events and rejected_events
are views over it (docs/staging.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.warehouse import STAGED, Warehouse, open_warehouse

TS = "2024-03-01T10:00:00Z"
# Complete runs (every model, so the next run parses the load runs after this one's) without
# the data tests: what is checked here are the rows, and the tests of stg_events and
# rejected_events are run on their own where they are the subject (failures() below).
MODELS_ONLY = ("--exclude", "resource_type:test")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def event(event_id: str, content: str, timestamp: str = TS) -> dict:
    return {
        "event_id": event_id,
        "conversation_id": "c1",
        "event_type": "user_message",
        "timestamp": timestamp,
        "properties": {"content": content},
    }


def test_first_delivery_is_decided_when_a_load_run_is_parsed_and_kept_once(warehouse):
    write_jsonl(
        warehouse.landing / "a.jsonl",
        [event("e1", "first"), event("e2", "bad copy", timestamp="not a time"), event("e3", "only")],
    )
    warehouse.load()
    warehouse.build(None, *MODELS_ONLY)  # a complete run: the next one parses the load runs after this one's

    # a later load run: e1 again (a duplicate), e2's first valid copy (a bad
    # copy never wins), e4 twice in one file (the earlier row wins)
    write_jsonl(
        warehouse.landing / "b.jsonl",
        [event("e1", "resent"), event("e2", "good copy"), event("e4", "row 3"), event("e4", "row 4")],
    )
    warehouse.load()
    warehouse.build(None, *MODELS_ONLY)
    assert warehouse.query("select load_id from scope.scope_load_runs") == [(2,)], "load run 1 was parsed again"

    flags = warehouse.query(
        "select load_id, source_file, row_number, event_id, rejection_reason, is_first_delivery "
        "from staging.base_events_parsed order by load_id, row_number"
    )
    assert flags == [
        (1, "a.jsonl", 1, "e1", None, True),
        (1, "a.jsonl", 2, "e2", "unparseable_timestamp", False),
        (1, "a.jsonl", 3, "e3", None, True),
        (2, "b.jsonl", 1, "e1", None, False),
        (2, "b.jsonl", 2, "e2", None, True),
        (2, "b.jsonl", 3, "e4", None, True),
        (2, "b.jsonl", 4, "e4", None, False),
    ]
    assert warehouse.query("select event_id, content from staging.stg_events order by event_id") == [
        ("e1", "first"),
        ("e2", "good copy"),
        ("e3", "only"),
        ("e4", "row 3"),
    ]
    assert warehouse.query(
        "select load_id, raw_rows, staged_rows, duplicates_dropped, quarantined_rows, is_reconciled "
        "from audit.reconciliation order by load_id"
    ) == [(1, 3, 2, 0, 1, True), (2, 4, 2, 2, 0, True)]

    # decided load by load, the same as parsing every load run at once
    incremental = warehouse.table_hash("staging.base_events_parsed")
    warehouse.dbt("run", "--select", "base_events_parsed", "--full-refresh")
    assert warehouse.table_hash("staging.base_events_parsed") == incremental


@pytest.fixture(scope="module")
def staged(tmp_path_factory, dbt_target_dir) -> Warehouse:
    """One good event and one with a bad timestamp, loaded and staged."""
    warehouse = Warehouse(tmp_path_factory.mktemp("staged"), dbt_target_dir)
    write_jsonl(warehouse.landing / "a.jsonl", [event("e1", "hello"), event("e2", "bad", timestamp="never")])
    warehouse.load()
    warehouse.build(STAGED)
    return warehouse


def test_the_events_are_materialized_once(staged):
    warehouse = staged
    kinds = dict(
        warehouse.query(
            "select table_schema || '.' || table_name, table_type from information_schema.tables "
            "where table_name in ('base_events_parsed', 'stg_events', 'rejected_events', 'reconciliation')"
        )
    )
    assert kinds == {
        "staging.base_events_parsed": "BASE TABLE",
        "staging.stg_events": "VIEW",
        "quarantine.rejected_events": "VIEW",
        "audit.reconciliation": "BASE TABLE",
    }
    assert warehouse.query("select event_id, reason from quarantine.rejected_events") == [
        ("e2", "unparseable_timestamp")
    ]


def test_rejected_event_reasons_are_the_served_columns_of_rejected_events(staged):
    """The snapshot serves rejected_events' verdict columns read from rejected_event_reasons
    (lib/serving.py, SERVED_FROM): the two hold the same rows."""
    from convo_warehouse.lib.serving import SERVED_EXTRA_TABLES, SERVED_FROM

    served = SERVED_EXTRA_TABLES["quarantine.rejected_events"]
    assert SERVED_FROM["quarantine.rejected_events"] == "quarantine.rejected_event_reasons"
    both = [
        sorted(staged.query(f"select {served} from {table}"))
        for table in ("quarantine.rejected_events", "quarantine.rejected_event_reasons")
    ]
    assert both[0] == both[1] == [(1, "a.jsonl", 2, "unparseable_timestamp", both[0][0][4])]


def test_the_views_read_the_warehouse_copied_under_another_name(staged, tmp_path):
    copy = staged.file_copy(tmp_path / "backup-copy.duckdb")

    # the file's catalog is now backup-copy: a view naming "warehouse" would fail
    with open_warehouse(copy) as con:
        assert con.execute("select event_id from staging.stg_events").fetchall() == [("e1",)]
        assert con.execute("select event_id from quarantine.rejected_events").fetchall() == [("e2",)]
        assert con.execute("select raw_rows from staging.stg_loads").fetchall() == [(2,)]


def failures(warehouse, model: str) -> dict[str, int]:
    """dbt test of ``model``'s own tests: test name -> failing rows (0 when it passed)."""
    result = warehouse.dbt("test", "--select", model, "--exclude", "test_type:unit", check=False)
    return {
        node_result.node.name: int(node_result.failures or 0)
        for node_result in result.result.results
        if getattr(node_result.node, "attached_node", None) == f"model.convo_warehouse.{model}"
    }


def failing(found: dict[str, int]) -> dict[str, int]:
    """The failing tests of ``found``, by kind (unique_combination, expression_is_true)."""
    return {name.split(f"_{model}")[0]: rows for name, rows in found.items() if rows
            for model in ("stg_events", "rejected_events") if f"_{model}" in name}


def test_stg_events_and_rejected_events_tests_check_the_load_runs_the_run_parsed(warehouse):
    """Their tests read the load runs of scope_load_runs (a parsed row never changes): a
    complete run that parsed load run 2 checks its staged events against every staged one and
    its rejected rows, and does not read load run 1's rows again."""
    write_jsonl(warehouse.landing / "a.jsonl", [
        event("e1", "first"), event("e2", "second"), event("e5", "bad", timestamp="never"),
    ])
    warehouse.load()
    warehouse.build(None, *MODELS_ONLY)
    write_jsonl(warehouse.landing / "b.jsonl", [
        event("e2", "resent"), event("e3", "third"), event("e6", "bad", timestamp="never"),
    ])
    warehouse.load()
    warehouse.build(None, *MODELS_ONLY)
    assert warehouse.query("select load_id from scope.scope_load_runs") == [(2,)]
    stg_events, rejected = failures(warehouse, "stg_events"), failures(warehouse, "rejected_events")
    assert len(stg_events) >= 2 and len(rejected) == 2
    assert set(stg_events.values()) == set(rejected.values()) == {0}

    # an old load run's rows are not checked again (the run parsed load 2 only)
    warehouse.query("update staging.base_events_parsed set properties = null where event_id = 'e1'")
    warehouse.query("update staging.base_events_parsed set rejection_detail = null where event_id = 'e5'")
    assert set(failures(warehouse, "stg_events").values()) == {0}
    assert set(failures(warehouse, "rejected_events").values()) == {0}
    # a staged event of the parsed load run is checked against every staged one
    warehouse.query(
        "update staging.base_events_parsed set is_first_delivery = true where event_id = 'e2' and load_id = 2"
    )
    assert failing(failures(warehouse, "stg_events")) == {"unique_combination": 1}
    # and its fields
    warehouse.query("update staging.base_events_parsed set properties = null where event_id = 'e3'")
    assert failing(failures(warehouse, "stg_events")) == {"unique_combination": 1, "expression_is_true": 1}
    # the parsed load run's rejected row is read
    warehouse.query("update staging.base_events_parsed set rejection_detail = null where event_id = 'e6'")
    assert failing(failures(warehouse, "rejected_events")) == {"expression_is_true": 1}


def test_the_properties_object_keeps_only_what_its_columns_cannot_give_back(warehouse):
    """Each value is stored once: base_events_parsed.properties drops the fields its columns hold as
    sent (every text field but funnel and stage, which an event type alias may override; the integer
    and the number fields when all of the row's read back as sent), so markers read them back
    through funnel_marker_property_sql (tests/live/test_markers_python_equals_sql.py)."""
    def sent(event_id: str, event_type: str, properties: dict | None) -> dict:
        row = {"event_id": event_id, "conversation_id": "c1", "event_type": event_type, "timestamp": TS}
        return row if properties is None else {**row, "properties": properties}

    write_jsonl(warehouse.landing / "a.jsonl", [
        sent("e1", "user_message",
             {"content": "hi", "intent": "refund", "turn": 3, "sentiment": 0.5, "lead_score": 80, "extra": "x"}),
        sent("e2", "stage_reached", {"funnel": "sales", "stage": "booked", "turn": "3.50", "comment": None}),
        sent("e3", "agent_message", {"content": "hello", "latency_ms": 1.5, "input_tokens": 10, "flag": True}),
        sent("e4", "conversation_started", None),
        # every field has a column that gives it back (in e6, one is null): nothing is left
        sent("e5", "agent_message", {"content": "ok", "turn": 2, "latency_ms": 2.5}),
        sent("e6", "agent_message", {"content": "ok", "tool_name": None}),
    ])
    warehouse.load()
    warehouse.build(STAGED)
    stored = {
        event_id: json.loads(properties)
        for event_id, properties in warehouse.query("select event_id, properties from staging.stg_events")
    }
    assert stored == {
        # lead_score 80 reads back as 80.0: the number fields stay, the integer turn goes
        "e1": {"sentiment": 0.5, "lead_score": 80, "extra": "x"},
        # "3.50" is no integer as sent; funnel and stage stay
        "e2": {"funnel": "sales", "stage": "booked", "turn": "3.50"},
        "e3": {"flag": True},
        "e4": {},
        "e5": {},
        "e6": {},
    }
    # an object left empty is stored as the same text whichever way it was emptied
    assert warehouse.query(
        "select distinct properties from staging.stg_events where event_id in ('e4', 'e5', 'e6')"
    ) == [("{}",)]
    # the columns hold what was dropped
    assert warehouse.query(
        "select event_id, content, intent, turn, latency_ms, input_tokens from staging.stg_events order by 1"
    ) == [
        ("e1", "hi", "refund", 3, None, None),
        ("e2", None, None, 4, None, None),
        ("e3", "hello", None, None, 1.5, 10),
        ("e4", None, None, None, None, None),
        ("e5", "ok", None, 2, 2.5, None),
        ("e6", "ok", None, None, None, None),
    ]
