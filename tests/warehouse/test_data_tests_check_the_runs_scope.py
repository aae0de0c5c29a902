"""Data tests that read whole tables check what the run recomputed (docs/incremental.md).

The tests that would read a whole history narrow it to the scope of the run
they test, read from the scope models as the run built them: the
relationships of the per-conversation marts (``relationships_in_scope``) to
the conversations of scope_conversations, the reconciliation of metrics_daily
with fct_conversations to the days of scope_days, the raw rows'
reconciliation to the load runs of scope_load_runs. A violating row the run
recomputed fails its test; an old violating row the run did not recompute is
not read again (the intent: a run checks what it wrote); the first complete
build recomputes everything, so its tests check every row. The Great
Expectations suites read the same days (audit.partitions_rewritten).
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest

from convo_warehouse.lib.generate import generate_events
from support.warehouse import open_warehouse

END_DATE = "2024-04-02"
RELATIONSHIPS = "relationships_in_scope_fct_messages_conversation_id"
DAILY = "assert_metrics_daily_counts_every_conversation"
RECONCILE = "assert_raw_rows_reconcile"
TESTS = f"fct_messages,test_name:relationships_in_scope {DAILY} {RECONCILE}"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    source = tmp_path_factory.mktemp("scoped-tests-landing")
    generate_events(source, conversations=60, days=2, seed=5, end_date=END_DATE, progress=False)
    return sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")


def failures(warehouse) -> dict[str, int]:
    """dbt test of the three tests: RELATIONSHIPS / DAILY / RECONCILE -> failing rows (0: passed)."""
    result = warehouse.dbt("test", "--select", TESTS, check=False)
    found = {}
    for node_result in result.result.results:
        if node_result.node.resource_type != "test":
            continue
        name = node_result.node.name
        short = RELATIONSHIPS if name.startswith(RELATIONSHIPS) else name
        assert short not in found, f"two tests named {short}"
        found[short] = int(node_result.failures or 0)
    assert found.keys() == {RELATIONSHIPS, DAILY, RECONCILE}, found
    return found


def days_picked_by_gx(warehouse, model: str) -> set:
    """The days of fct_conversations the Great Expectations suites read for the model."""
    from convo_warehouse.checks.validation import rewritten_by_latest_build

    con = open_warehouse(warehouse.path)
    try:
        condition = rewritten_by_latest_build(con, f"marts.{model}", "d")
    finally:
        con.close()
    return {row[0] for row in warehouse.query(
        f"select d from (select distinct conversation_date as d from marts.fct_conversations) where {condition}"
    )}


def scope(warehouse) -> tuple[set, set, list]:
    """What the last run recomputed: its conversations, days and load runs."""
    return (
        {row[0] for row in warehouse.query("select conversation_id from scope.scope_conversations")},
        {row[0] for row in warehouse.query("select event_date from scope.scope_days")},
        [row[0] for row in warehouse.query("select load_id from scope.scope_load_runs order by load_id")],
    )


def test_scoped_tests_fail_on_what_the_run_recomputed_and_a_first_build_checks_everything(generated, make_warehouse):
    warehouse = make_warehouse("scoped")
    warehouse.dbt("seed")
    for day in generated:  # a load run per day
        shutil.copytree(day, warehouse.landing / day.name)
        warehouse.load()
    # the first complete run: every conversation, day and load run is new
    warehouse.dbt("run")
    conversations, days, loads = scope(warehouse)
    assert conversations == {row[0] for row in warehouse.query("select conversation_id from marts.fct_conversations")}
    assert loads == [1, 2] and len(days) >= 2
    assert failures(warehouse) == {RELATIONSHIPS: 0, DAILY: 0, RECONCILE: 0}

    first_day, other_day = warehouse.query(
        "select min(conversation_date), max(conversation_date) from marts.fct_conversations"
    )[0]
    clock = warehouse.scalar("select max(event_at) from staging.stg_events")
    # one conversation of each day with messages, all its events on its day and well before
    # the clock (a message after its last one moves no other conversation)
    recomputed, left_alone = (
        warehouse.scalar(
            "select min(conversation_id) from marts.fct_conversations where conversation_date = ? "
            "and cast(last_event_at as date) = conversation_date and last_event_at < ? "
            "and conversation_id in (select conversation_id from marts.fct_messages)",
            [day, clock - timedelta(hours=1)],
        )
        for day in (first_day, other_day)
    )
    messages = dict(warehouse.query(
        "select conversation_id, count(*) from marts.fct_messages where conversation_id in (?, ?) "
        "group by conversation_id",
        [recomputed, left_alone],
    ))
    conversation_days = {row[0] for row in warehouse.query("select conversation_date from marts.fct_conversations")}
    assert conversation_days <= days and days_picked_by_gx(warehouse, "fct_conversations") == conversation_days

    # Violations everywhere: the first build's tests find every one.
    wrong_count = (
        "update marts.metrics_daily set value = value + 100, numerator = numerator + 100 "
        "where metric_name = 'conversations' and segment_type = 'all' and metric_date = ?"
    )
    lose_a_staged_row = (
        "delete from staging.base_events_parsed where rowid = (select min(rowid) from staging.base_events_parsed "
        "where load_id = ? and is_first_delivery and conversation_id <> ?)"
    )
    lose_the_parent = "delete from marts.fct_conversations where conversation_id = ?"
    for day in (first_day, other_day):
        warehouse.query(wrong_count, [day])
    for load in loads:
        warehouse.query(lose_a_staged_row, [load, recomputed])
    for conversation in (recomputed, left_alone):
        warehouse.query(lose_the_parent, [conversation])
    assert failures(warehouse) == {RELATIONSHIPS: messages[recomputed] + messages[left_alone], DAILY: 2, RECONCILE: 2}

    # An incremental run: one new message of `recomputed`, in a third load run.
    last = warehouse.query(
        "select max(event_at) from staging.stg_events where conversation_id = ?", [recomputed]
    )[0][0]
    folder = warehouse.landing / "touch"
    folder.mkdir()
    (folder / "touch.jsonl").write_text(json.dumps({
        "event_id": "touch-1", "conversation_id": recomputed, "event_type": "user_message",
        "timestamp": (last + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "properties": {"content": "hello again"},
    }) + "\n")
    warehouse.load()
    warehouse.dbt("run")
    assert scope(warehouse) == ({recomputed}, {first_day}, [3])
    assert days_picked_by_gx(warehouse, "fct_conversations") == {first_day}
    # The run recomputed `recomputed` (its parent row is back) and first_day (its count is
    # right again); the violations it left as they were (left_alone's missing parent,
    # other_day's wrong count, the rows lost from load runs 1 and 2) are not read again.
    assert not warehouse.query("select 1 from marts.fct_conversations where conversation_id = ?", [left_alone])
    assert failures(warehouse) == {RELATIONSHIPS: 0, DAILY: 0, RECONCILE: 0}

    # The same violations among what the run recomputed fail the tests.
    warehouse.query(wrong_count, [first_day])
    warehouse.query(lose_a_staged_row, [3, "none"])
    warehouse.query(lose_the_parent, [recomputed])
    assert failures(warehouse) == {RELATIONSHIPS: messages[recomputed] + 1, DAILY: 1, RECONCILE: 1}
