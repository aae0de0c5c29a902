"""Data tests that read whole tables check what the run wrote (docs/incremental.md).

A replace_touched build records the keys it replaced (audit.keys_rewritten)
and the days it rewrote (audit.partitions_rewritten); the relationships
tests of the per-conversation marts (``relationships_of_written_rows``) and
the singular reconciliations in tests/dbt read them when compiled. An
incremental build's tests check the rows it wrote: a violating row among
them fails the test, an old row it left as it was is not read again (the
intent: a run checks what it wrote). A full build wrote every row, so its
tests check everything.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest

from convo_warehouse.lib.generate import generate_events
from support.warehouse import open_warehouse

END_DATE = "2024-04-02"
SELECT = "+fct_conversations +fct_messages +metrics_daily"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    source = tmp_path_factory.mktemp("written-rows-landing")
    generate_events(source, conversations=60, days=2, seed=5, end_date=END_DATE, progress=False)
    return sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")


def failures(warehouse, select: str) -> dict[str, int]:
    """dbt test of `select`: test name -> failing rows (0 when it passed)."""
    result = warehouse.dbt("test", "--select", select, check=False)
    return {
        node_result.node.name: int(node_result.failures or 0)
        for node_result in result.result.results
        if node_result.node.resource_type == "test"
    }


def relationships_failures(warehouse) -> int:
    found = failures(warehouse, "fct_messages,test_name:relationships_of_written_rows")
    assert len(found) == 1, found
    return next(iter(found.values()))


def daily_failures(warehouse) -> int:
    return failures(warehouse, "assert_metrics_daily_counts_every_conversation")[
        "assert_metrics_daily_counts_every_conversation"
    ]


def days_picked(warehouse, condition: str) -> set:
    """The days of fct_conversations a condition on a column `d` keeps."""
    return {row[0] for row in warehouse.query(
        f"select d from (select distinct conversation_date as d from marts.fct_conversations) where {condition}"
    )}


def days_picked_by_dbt(warehouse, model: str) -> set:
    """The days dbt's written_days() picks for the model's newest build (compiled as a data test is)."""
    result = warehouse.dbt("compile", "--inline", f"select {{{{ written_days(['{model}'], 'd') }}}} as condition")
    compiled = result.result.results[0].node.compiled_code
    return days_picked(warehouse, compiled.split("select ", 1)[1].rsplit(" as condition", 1)[0])


def days_picked_by_gx(warehouse, model: str) -> set:
    """The days the Great Expectations suites read for the model: the Python twin of written_days()."""
    from convo_warehouse.checks.validation import rewritten_by_latest_build

    con = open_warehouse(warehouse.path)
    try:
        condition = rewritten_by_latest_build(con, f"marts.{model}", "d")
    finally:
        con.close()
    return days_picked(warehouse, condition)


def test_scoped_tests_fail_on_rows_the_run_wrote_and_full_builds_check_everything(generated, make_warehouse):
    warehouse = make_warehouse("written")
    warehouse.dbt("seed")
    for day in generated:
        shutil.copytree(day, warehouse.landing / day.name)
    warehouse.load()
    warehouse.dbt("run", "--select", SELECT)
    assert warehouse.scalar(
        "select bool_and(rewrote_all) from audit.keys_rewritten where relation_name = 'marts.fct_messages'"
    ) is True

    # an incremental run: one new message of one conversation of the first day
    first_day, other_day = warehouse.query(
        "select min(conversation_date), max(conversation_date) from marts.fct_conversations"
    )[0]
    written, untouched = (row[0] for row in warehouse.query(
        "select conversation_id from marts.fct_conversations where conversation_date = ? "
        "and conversation_id in (select conversation_id from marts.fct_messages) order by conversation_id limit 2",
        [first_day],
    ))
    last = warehouse.scalar("select last_event_at from marts.fct_conversations where conversation_id = ?", [written])
    folder = warehouse.landing / "touch"
    folder.mkdir()
    (folder / "touch.jsonl").write_text(json.dumps({
        "event_id": "touch-1", "conversation_id": written, "event_type": "user_message",
        "timestamp": (last + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "properties": {"content": "hello again"},
    }) + "\n")
    warehouse.load()
    warehouse.dbt("run", "--select", SELECT)
    assert warehouse.query(
        "select touched_key from audit.keys_rewritten where relation_name = 'marts.fct_messages' "
        "and touched_key is not null"
    ) == [(written,)]
    assert relationships_failures(warehouse) == 0 and daily_failures(warehouse) == 0
    assert days_picked_by_dbt(warehouse, "fct_conversations") == days_picked_by_gx(warehouse, "fct_conversations")
    assert days_picked_by_gx(warehouse, "fct_conversations") == {first_day}

    # metrics_daily: a wrong count on a day the run did not rewrite is not
    # read again; on the day it rewrote, the test fails
    assert other_day != first_day
    wrong_count = (
        "update marts.metrics_daily set value = value + 100, numerator = numerator + 100 where metric_name = 'conversations' "
        "and segment_type = 'all' and metric_date = ?"
    )
    warehouse.query(wrong_count, [other_day])
    assert daily_failures(warehouse) == 0
    warehouse.query(wrong_count, [first_day])
    assert daily_failures(warehouse) == 1

    # both conversations lose their parent row: only the one the run wrote
    # is read again, and its messages fail the test
    for conversation in (written, untouched):
        warehouse.query("delete from marts.fct_conversations where conversation_id = ?", [conversation])
    messages = dict(warehouse.query(
        "select conversation_id, count(*) from marts.fct_messages where conversation_id in (?, ?) "
        "group by conversation_id",
        [written, untouched],
    ))
    assert relationships_failures(warehouse) == messages[written]

    # a full build of fct_messages wrote every row: both conversations fail
    warehouse.dbt("run", "--select", "fct_messages", "--full-refresh")
    assert relationships_failures(warehouse) == messages[written] + messages[untouched]


def reconcile_failures(warehouse) -> int:
    return failures(warehouse, "assert_raw_rows_reconcile")["assert_raw_rows_reconcile"]


def test_the_raw_rows_reconciliation_checks_the_load_runs_the_build_parsed(generated, make_warehouse):
    warehouse = make_warehouse("reconciled")
    warehouse.dbt("seed")
    for day in generated:  # a load run per day
        shutil.copytree(day, warehouse.landing / day.name)
        warehouse.load()
        warehouse.dbt("run", "--select", "+reconciliation")
    loads = [row[0] for row in warehouse.query("select load_id from audit.reconciliation order by load_id")]
    assert len(loads) == 2
    assert reconcile_failures(warehouse) == 0

    lose_a_staged_row = (
        "delete from staging.base_events_parsed where rowid = (select min(rowid) from staging.base_events_parsed "
        "where load_id = ? and is_first_delivery)"
    )
    # a row lost from the load run parsed before is not read again; from the
    # one the newest build parsed, it fails the test
    warehouse.query(lose_a_staged_row, [loads[0]])
    assert reconcile_failures(warehouse) == 0
    warehouse.query(lose_a_staged_row, [loads[1]])
    assert reconcile_failures(warehouse) == 1

    # a full build parsed every load run: a row lost from each fails both
    warehouse.dbt("run", "--select", "base_events_parsed", "--full-refresh")
    assert reconcile_failures(warehouse) == 0
    for load in loads:
        warehouse.query(lose_a_staged_row, [load])
    assert reconcile_failures(warehouse) == 2
