"""The replace_touched materialization checks what each build writes.

Row rules are the models' contract constraints (enforced by the engine on
every row a build inserts) and the grain is the model's unique_key (checked
by the materialization on the rows it wrote, before it commits), so a run
checks exactly what it wrote and a full build everything. A failed check
rolls the build back. And a change to what a model is computed from (its
SQL or vars, an upstream seed's rows) rebuilds it whole.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest

from convo_warehouse.lib.generate import generate_events

# A fixed past end date: every generated day is whole.
END_DATE = "2024-04-02"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    source = tmp_path_factory.mktemp("replace-touched-landing")
    generate_events(source, conversations=60, days=2, seed=5, end_date=END_DATE, progress=False)
    return sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")


def built(make_warehouse, name: str, days) -> object:
    warehouse = make_warehouse(name)
    warehouse.dbt("seed")
    for day in days:
        shutil.copytree(day, warehouse.landing / day.name)
    warehouse.load()
    warehouse.dbt("run", "--select", "+fct_conversations +fct_messages")
    return warehouse


def touch(warehouse, conversation_id: str, name: str = "touch") -> None:
    """A new load with one user message of `conversation_id`, after its last event."""
    last = warehouse.scalar(
        "select last_event_at from marts.fct_conversations where conversation_id = ?", [conversation_id]
    )
    folder = warehouse.landing / name
    folder.mkdir()
    (folder / f"{name}.jsonl").write_text(json.dumps({
        "event_id": f"{name}-1", "conversation_id": conversation_id, "event_type": "user_message",
        "timestamp": (last + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "properties": {"content": "hello again"},
    }) + "\n")
    warehouse.load()


def failure_of(result) -> str:
    return "\n".join(str(node_result.message) for node_result in result.result.results if node_result.message)


def test_rows_a_build_writes_that_repeat_the_grain_fail_it_and_roll_it_back(generated, make_warehouse):
    warehouse = built(make_warehouse, "grain", generated)
    conversation = warehouse.scalar(
        "select min(conversation_id) from marts.fct_messages where event_type = 'user_message'"
    )
    # a message of that conversation staged twice (a defect upstream of the mart: a second
    # row of base_events_parsed flagged as its first delivery, so stg_events shows both)
    warehouse.query(
        "insert into staging.base_events_parsed "
        "select * replace (row_number + 1000000 as row_number) from staging.base_events_parsed where event_id = "
        "(select min(event_id) from staging.stg_events where conversation_id = ? and event_type = 'user_message')",
        [conversation],
    )
    before = warehouse.table_hash("marts.fct_messages")
    touch(warehouse, conversation)
    result = warehouse.dbt("run", "--select", "base_events_parsed stg_events fct_messages", check=False)
    assert not result.success
    message = failure_of(result)
    assert "fct_messages: the rows this build wrote repeat its unique key (event_id)" in message, message
    assert warehouse.table_hash("marts.fct_messages") == before, "the failed build was not rolled back"


def test_a_row_breaking_the_contract_fails_the_build_that_writes_it(generated, make_warehouse):
    warehouse = built(make_warehouse, "contract", generated)
    bad, good = (row[0] for row in warehouse.query(
        "select conversation_id from marts.fct_conversations where started order by conversation_id limit 2"
    ))
    # an impossible satisfaction upstream of the mart, in a conversation no
    # build rewrites yet: the mart's old rows are not read again
    warehouse.query(
        "update intermediate.int_conversations_summarized set satisfaction_score = 1.5 where conversation_id = ?",
        [bad],
    )
    touch(warehouse, good, "good")
    warehouse.dbt("run", "--select", "base_events_parsed stg_events fct_conversations")
    # the build that rewrites it fails on the constraint (satisfaction_score between 0 and 1)
    touch(warehouse, bad, "bad")
    before = warehouse.table_hash("marts.fct_conversations")
    result = warehouse.dbt("run", "--select", "base_events_parsed stg_events fct_conversations", check=False)
    assert not result.success
    assert "CHECK constraint failed" in failure_of(result) and "satisfaction_score" in failure_of(result)
    assert warehouse.table_hash("marts.fct_conversations") == before


def test_a_changed_var_or_seed_rebuilds_the_models_computed_from_it(generated, make_warehouse):
    """The build fingerprint: rebuilt models record a new row in
    audit.incremental_builds; a re-run with nothing new records none."""
    warehouse = built(make_warehouse, "fingerprint", generated)
    select = ("run", "--select", "+fct_conversations +fct_messages")

    def builds() -> dict[str, int]:
        return dict(warehouse.query(
            "select model_name, count(*) from audit.incremental_builds group by model_name"
        ))

    first = builds()
    warehouse.dbt(*select)
    assert builds() == first, "a re-run with nothing new recorded a build"

    # abandon_after_minutes is read by int_conversations_summarized: it and
    # fct_conversations are rebuilt whole, fct_messages (not computed from it) is not
    warehouse.dbt(*select, "--vars", "{abandon_after_minutes: 45}")
    changed = {model for model, count in builds().items() if count != first.get(model)}
    assert {"int_conversations_summarized", "fct_conversations"} <= changed
    assert "fct_messages" not in changed and "stg_events" not in changed
    rewrote_all = warehouse.query(
        "select relation_name from audit.partitions_rewritten where rewrote_all "
        "and recorded_at > (select min(recorded_at) from audit.incremental_builds "
        "where model_name = 'int_conversations_summarized' and recorded_at > (select max(recorded_at) "
        "from audit.incremental_builds where model_name = 'stg_events'))"
    )
    assert ("marts.fct_conversations",) in rewrote_all

    # an alias added to the event-type seed: staging maps every event again
    # (its rows are in every staged model's fingerprint)
    second = builds()
    warehouse.query("insert into seeds.event_type_aliases (alias, event_type) values ('never_sent', 'tool_called')")
    warehouse.dbt(*select, "--vars", "{abandon_after_minutes: 45}")
    changed = {model for model, count in builds().items() if count != second.get(model)}
    assert {"stg_events", "fct_messages", "fct_conversations"} <= changed


def test_replace_touched_models_hold_their_not_null_rules_as_constraints(generated, make_warehouse):
    """A not_null rule of a replace_touched model is a contract constraint, enforced by
    DuckDB on every row a build inserts, never a data test node (a node per column
    costs every run a query over the table; the constraint costs nothing)."""
    from support.warehouse import _session_manifest

    warehouse = built(make_warehouse, "constraints", generated)
    manifest = _session_manifest(warehouse.target_dir)
    touched = {
        unique_id: node for unique_id, node in manifest.nodes.items()
        if node.resource_type == "model" and node.config.materialized == "replace_touched"
    }
    not_null_tests = sorted(
        node.attached_node for node in manifest.nodes.values()
        if node.resource_type == "test" and getattr(node, "test_metadata", None)
        and node.test_metadata.name == "not_null" and node.attached_node in touched
        and touched[node.attached_node].original_file_path.startswith("models/intermediate")
    )
    assert not not_null_tests, not_null_tests

    enforced = dict(warehouse.query(
        "select schema_name || '.' || table_name, list(constraint_column_names[1] order by constraint_column_names[1]) "
        "from duckdb_constraints() where constraint_type = 'NOT NULL' group by 1"
    ))
    declaring = {}
    for node in touched.values():
        declared = sorted(
            name for name, column in node.columns.items()
            if any(constraint.type == "not_null" for constraint in column.constraints)
        )
        relation = f"{node.schema}.{node.alias or node.name}"
        if declared and warehouse.scalar(
            "select count(*) from information_schema.tables where table_schema || '.' || table_name = ?", [relation]
        ):
            declaring[relation] = declared
    # every replace_touched model this build made (upstream of the two facts)
    # holds each rule it declares
    assert {"intermediate.int_conversations_summarized", "marts.fct_conversations"} <= set(declaring), declaring
    assert {relation: enforced.get(relation) for relation in declaring} == declaring
    conversation = warehouse.scalar("select min(conversation_id) from intermediate.int_conversations_summarized")
    with pytest.raises(Exception, match="NOT NULL constraint failed"):
        warehouse.query(
            "insert into intermediate.int_conversations_summarized select * replace (null as conversation_id) "
            "from intermediate.int_conversations_summarized where conversation_id = ?",
            [conversation],
        )
