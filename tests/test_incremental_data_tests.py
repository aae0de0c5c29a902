"""Data tests of incremental models read what the latest build changed, and
the whole history on a full refresh or with the var test_full_history:
stg_events' row-by-row tests the loads since the previous build (macro
loaded_since_previous_build), the tests of conversation-keyed models the
conversations the latest build rewrote (rewritten_by_latest_build)."""

from __future__ import annotations

import shutil

import duckdb

from convo_warehouse.checks.validation import rewritten_by_latest_build
from convo_warehouse.lib.generate import generate_events

# A fixed past end date: every generated day is whole. Ending today (the
# default), the last day holds only the conversations started before now,
# none at all just after midnight UTC.
END_DATE = "2024-04-02"


def test_stg_events_row_tests_read_the_new_loads_only(tmp_path_factory, make_warehouse):
    source = tmp_path_factory.mktemp("scoped-tests-landing")
    generate_events(source, conversations=60, days=2, seed=5, end_date=END_DATE, progress=False)
    days = sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")
    warehouse = make_warehouse("scoped-tests")
    warehouse.dbt("seed")
    for number, day in enumerate(days, start=1):
        shutil.copytree(day, warehouse.landing / day.name)
        assert warehouse.load().load_id == number
        warehouse.dbt("run", "--select", "+stg_events")

    def not_null_event_type_passes(*extra: str) -> bool:
        result = warehouse.dbt(
            "test", "--select", "not_null_stg_events_event_type", *extra, check=False
        )
        statuses = {
            node_result.node.name: str(node_result.status) for node_result in result.result.results
        }
        assert "not_null_stg_events_event_type" in statuses, statuses
        return statuses["not_null_stg_events_event_type"] == "pass"

    # A null in a row of the first load: the scoped test (the second load's
    # rows) does not read it, the whole-history test does.
    warehouse.query(
        "update staging.stg_events set event_type = null where event_id = "
        "(select min(event_id) from staging.stg_events where load_id = 1)"
    )
    assert not_null_event_type_passes()
    assert not not_null_event_type_passes("--vars", "{test_full_history: true}")
    # A null in the newest load's rows is found by the scoped test.
    warehouse.query(
        "update staging.stg_events set event_type = null where event_id = "
        "(select min(event_id) from staging.stg_events where load_id = 2)"
    )
    assert not not_null_event_type_passes()


def test_tests_of_conversation_keyed_models_read_the_conversations_rewritten(tmp_path_factory, make_warehouse):
    """A data test of a model replaced conversation by conversation reads the
    conversations its latest build rewrote (audit.conversations_refreshed),
    when the test can be answered from them alone; a unique test on another
    key (fct_messages.event_id) still reads everything."""
    source = tmp_path_factory.mktemp("conversation-scoped-landing")
    generate_events(source, conversations=60, days=2, seed=6, end_date=END_DATE, progress=False)
    days = sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")
    warehouse = make_warehouse("conversation-scoped")
    warehouse.dbt("seed")
    select = ("--select", "+int_conversation_steps_cleaned +fct_messages")
    shutil.copytree(days[0], warehouse.landing / days[0].name)
    warehouse.load()
    warehouse.dbt("run", *select)
    shutil.copytree(days[1], warehouse.landing / days[1].name)
    warehouse.load()
    warehouse.dbt("run", *select)
    rewritten = {
        row[0] for row in warehouse.query(
            "select conversation_id from audit.conversations_refreshed "
            "where model_name = 'int_conversation_steps_cleaned' and conversation_id is not null"
        )
    }
    loaded_second = {
        row[0] for row in warehouse.query("select distinct conversation_id from staging.stg_events where load_id = 2")
    }
    assert rewritten == loaded_second

    def passes(test: str, *extra: str) -> bool:
        result = warehouse.dbt("test", "--select", test, *extra, check=False)
        statuses = {node_result.node.name: str(node_result.status) for node_result in result.result.results}
        assert test in statuses, statuses
        return statuses[test] == "pass"

    steps_unique = "unique_combination_int_conversation_steps_cleaned_conversation_id__step_number"
    untouched = warehouse.scalar(
        "select min(conversation_id) from intermediate.int_conversation_steps_cleaned where conversation_id not in "
        "(select conversation_id from staging.stg_events where load_id = 2)"
    )
    touched = min(rewritten & {row[0] for row in warehouse.query(
        "select distinct conversation_id from intermediate.int_conversation_steps_cleaned"
    )})
    duplicate_step = (
        "insert into intermediate.int_conversation_steps_cleaned "
        "select * from intermediate.int_conversation_steps_cleaned where conversation_id = ? and step_number = 1"
    )
    # A duplicate step of a conversation the latest build did not rewrite:
    # the scoped test does not read it, the whole-history one does.
    warehouse.query(duplicate_step, [untouched])
    assert passes(steps_unique)
    assert not passes(steps_unique, "--vars", "{test_full_history: true}")
    # One in a rewritten conversation is found.
    warehouse.query(duplicate_step, [touched])
    assert not passes(steps_unique)

    # fct_messages' unique event_id is not scoped (a duplicate may pair a
    # rewritten message with an untouched one); its not_null is.
    def compiled(test: str) -> str:
        result = warehouse.dbt("compile", "--select", test)
        return result.result.results[0].node.compiled_code

    assert "conversations_refreshed" not in compiled("unique_fct_messages_event_id")
    assert "conversations_refreshed" in compiled("not_null_fct_messages_event_id")

    # The GX suites scope a conversation-keyed mart by the same rule
    # (validation.rewritten_by_latest_build): the conversations dbt's scoped
    # tests read, and everything where dbt's tests read everything.
    def gx_scope() -> str:
        con = duckdb.connect(str(warehouse.path))
        try:
            return rewritten_by_latest_build(con, "int_conversation_steps_cleaned")
        finally:
            con.close()

    steps_not_null = "not_null_int_conversation_steps_cleaned_step"
    scoped = {
        row[0] for row in warehouse.query(
            f"select distinct conversation_id from intermediate.int_conversation_steps_cleaned where {gx_scope()}"
        )
    }
    assert scoped == rewritten & {row[0] for row in warehouse.query(
        "select distinct conversation_id from intermediate.int_conversation_steps_cleaned"
    )}
    assert "conversations_refreshed" in compiled(steps_not_null)
    # The latest build rewrote everything (a full build): both read every row.
    warehouse.query(
        "update audit.conversations_refreshed set rewrote_every_conversation = true "
        "where model_name = 'int_conversation_steps_cleaned' and conversation_id is null"
    )
    assert gx_scope() == "true"
    assert "conversations_refreshed" not in compiled(steps_not_null)
    # Nothing recorded (a warehouse from before the record): both read every row.
    warehouse.query("delete from audit.conversations_refreshed where model_name = 'int_conversation_steps_cleaned'")
    assert gx_scope() == "true"
    assert "conversations_refreshed" not in compiled(steps_not_null)
