"""The replace_scope strategy checks what each build writes.

Row rules are the models' contract constraints (enforced by the engine on
every row a build inserts); the grain (unique_key) and the scope are checked
by the strategy on the rows a build is about to write, before it writes
(macros/incremental/replace_scope.sql). A failed check fails the build and
leaves the table as it was. (That a change to what a model is computed from,
its SQL, a var it reads or an upstream seed's rows, rebuilds it whole is
checked by the runs of tests/warehouse/test_incremental_equals_full_build.py.)
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest
from support.warehouse import Warehouse, copy_project

from convo_warehouse.lib.generate import generate_events

# A fixed past end date: every generated day is whole.
END_DATE = "2024-04-02"
# the scope models and what the two marts read
UP_TO_MESSAGES = "+fct_conversations +fct_messages"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    source = tmp_path_factory.mktemp("replace-scope-landing")
    generate_events(source, conversations=60, days=2, seed=5, end_date=END_DATE, progress=False)
    return sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")


def built(warehouse: Warehouse, days) -> Warehouse:
    warehouse.dbt("seed")
    for day in days:
        shutil.copytree(day, warehouse.landing / day.name)
    warehouse.load()
    # a complete run: the next one's scope starts where it stopped (a partial one records nothing)
    warehouse.dbt("run")
    return warehouse


@pytest.fixture(scope="module")
def shipped(generated, tmp_path_factory, dbt_target_dir) -> Warehouse:
    """The generated days built by the project as shipped, once for the tests that start from it."""
    return built(Warehouse(tmp_path_factory.mktemp("shipped-build"), dbt_target_dir), generated)


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


def test_rows_repeating_the_grain_fail_the_build_and_leave_the_table_as_it_was(shipped, tmp_path):
    warehouse = shipped.copy(tmp_path / "grain")
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
    result = warehouse.dbt("run", "--select", UP_TO_MESSAGES, check=False)
    assert not result.success
    message = failure_of(result)
    assert "fct_messages: the rows to write repeat the grain (event_id)" in message, message
    assert warehouse.table_hash("marts.fct_messages") == before, "the failed build was not rolled back"


def test_a_row_breaking_the_contract_fails_the_build_that_writes_it(shipped, tmp_path):
    warehouse = shipped.copy(tmp_path / "contract")
    bad, good = (row[0] for row in warehouse.query(
        "select distinct conversation_id from intermediate.int_conversation_stages_combined "
        "order by conversation_id limit 2"
    ))
    # an impossible source upstream of the mart (fct_conversation_stages checks
    # source in ('event', 'rules', 'llm')), in a conversation no build rewrites
    # yet: the mart's old rows are not read again
    warehouse.query(
        "update intermediate.int_conversation_stages_combined set source = 'bogus' where conversation_id = ?",
        [bad],
    )
    # the scope and the mart, not the model the defect sits in
    mart_only = ("run", "--select", "+scope_days fct_conversation_stages")
    touch(warehouse, good, "good")
    warehouse.dbt(*mart_only)
    # the build that rewrites it fails on the constraint
    touch(warehouse, bad, "bad")
    before = warehouse.table_hash("marts.fct_conversation_stages")
    result = warehouse.dbt(*mart_only, check=False)
    assert not result.success
    assert "CHECK constraint failed" in failure_of(result) and "source" in failure_of(result)
    assert warehouse.table_hash("marts.fct_conversation_stages") == before


def test_every_row_rule_a_contract_states_is_a_constraint_of_its_table(shipped):
    """Row rules live in the contracts, not in data tests: each not_null and check constraint an
    enforced contract states is in the built table's definition, so DuckDB checks every insert."""
    declared: dict[str, tuple[set[str], int]] = {}
    for node in shipped.manifest_json()["nodes"].values():
        if node["resource_type"] != "model" or node["config"]["materialized"] not in ("table", "incremental"):
            continue
        if not node["config"]["contract"]["enforced"]:
            continue
        not_null = {name for name, column in node["columns"].items()
                    if any(c["type"] == "not_null" for c in column.get("constraints", []))}
        checks = sum(c["type"] == "check" for column in node["columns"].values() for c in column.get("constraints", []))
        checks += sum(c["type"] == "check" for c in node.get("constraints", []))
        declared[f"{node['schema']}.{node['alias']}"] = (not_null, checks)
    assert "intermediate.int_conversation_quality_scored" in declared and "audit.reconciliation" in declared
    built: dict[str, tuple[set[str], int]] = {name: (set(), 0) for name in declared}
    for schema, table, kind, columns in shipped.query(
        "select schema_name, table_name, constraint_type, constraint_column_names from duckdb_constraints()"
    ):
        name = f"{schema}.{table}"
        if name in built and kind == "NOT NULL":
            built[name][0].update(columns)
        elif name in built and kind == "CHECK":
            built[name] = (built[name][0], built[name][1] + 1)
    missing = {name: (sorted(want[0] - built[name][0]), want[1], built[name][1])
               for name, want in declared.items() if not want[0] <= built[name][0] or want[1] != built[name][1]}
    assert not missing, f"declared (not null columns missing, checks declared, checks built): {missing}"
    # and DuckDB holds a row to them
    with pytest.raises(Exception, match="CHECK constraint failed"):
        shipped.query("update intermediate.int_conversation_quality_scored set resolution = 2")


def test_a_body_returning_rows_outside_the_scope_fails_the_build(generated, tmp_path):
    """The slip of a model narrowed to the wrong scope (fct_messages reading the staged events of
    the scope's days instead of its conversations' events): its body returns the rows of every
    conversation of those days, which would be written twice. The strategy refuses to write them."""
    project = copy_project(tmp_path / "project")
    model = project / "models" / "marts" / "conversations" / "fct_messages.sql"
    text = model.read_text()
    narrowed = "from {{ events_in_scope if is_incremental() else staged_events }} as stg_events\n    where\n"
    assert narrowed in text, "fct_messages no longer reads its scope this way: update the test"
    model.write_text(text.replace(
        narrowed, "from {{ staged_events }} as stg_events\n    where\n"
        "        cast(stg_events.event_at as date) in (select days_in_scope.event_date from days_in_scope) and\n",
    ).replace(
        "\nwith\n\n", "\nwith\n\ndays_in_scope as (\n    select event_date from {{ ref('scope_days') }}\n),\n\n", 1,
    ))
    warehouse = built(Warehouse(tmp_path / "warehouse", tmp_path / "target", project), generated)
    conversation = warehouse.scalar("select min(conversation_id) from marts.fct_messages")
    before = warehouse.table_hash("marts.fct_messages")
    touch(warehouse, conversation)
    result = warehouse.dbt("run", "--select", UP_TO_MESSAGES, check=False)
    assert not result.success
    message = failure_of(result)
    assert "fct_messages: the body returned" in message and "rows outside this run's scope" in message, message
    assert "Narrow the body's input to the scope" in message
    assert warehouse.table_hash("marts.fct_messages") == before


def test_constraints_the_engine_does_not_enforce_are_checked_on_what_a_build_writes(generated, tmp_path):
    """Where no engine enforces a contract's constraints (Spark's Parquet tables; here a copy of the
    project whose mart's contract is not enforced), the strategy counts the rows to write against
    them: the row rule still fails the build that would write a breaking row, incremental or full."""
    project = copy_project(tmp_path / "project")
    schema = project / "models" / "marts" / "funnels" / "_funnels__models.yml"
    text = schema.read_text()
    enforced = "  - name: fct_conversation_stages\n"
    start = text.index(enforced)
    contract = text.index("        enforced: true\n", start)
    schema.write_text(text[:contract] + "        enforced: false\n" + text[contract + len("        enforced: true\n"):])
    warehouse = built(Warehouse(tmp_path / "warehouse", tmp_path / "target", project), generated)
    assert warehouse.manifest_json()["nodes"]["model.convo_warehouse.fct_conversation_stages"]["config"][
        "contract"]["enforced"] is False
    bad = warehouse.scalar("select min(conversation_id) from intermediate.int_conversation_stages_combined")
    warehouse.query(
        "update intermediate.int_conversation_stages_combined set source = 'bogus' where conversation_id = ?", [bad],
    )
    touch(warehouse, bad)
    before = warehouse.table_hash("marts.fct_conversation_stages")
    result = warehouse.dbt("run", "--select", "+scope_days fct_conversation_stages", check=False)
    assert not result.success
    message = failure_of(result)
    assert "fct_conversation_stages: rows to write break its contract's constraint" in message, message
    assert "source in ('event', 'rules', 'llm')" in message and "not enforced by duckdb" in message
    assert warehouse.table_hash("marts.fct_conversation_stages") == before
    # a full build checks every row it wrote, and is rolled back
    result = warehouse.dbt("run", "--select", "fct_conversation_stages", "--full-refresh", check=False)
    assert not result.success
    assert "rows to write break its contract's constraint" in failure_of(result)
    assert warehouse.table_hash("marts.fct_conversation_stages") == before
