"""Every marts table is byte-identical however it was built, and a run rewrites exactly its scope.

One warehouse, built from a copy of the dbt project (the scenario edits its
seeds and a var), is built run after run the way a pipeline run builds it
(``Warehouse.run_build()``: dbt's state comparison with the last build's
manifest drops what the project's changes reach, then one ``dbt build``):

1. two generated days, and an open conversation ahead of the generated data;
2. two more days, a conversation an hour later (the clock moves past the open
   one's abandonment window without any event of its own) and an alias added
   to seeds/event_type_aliases.csv (it re-maps events staged before);
3. two more days and late events of conversations loaded before: one moves a
   conversation to the day before, one names a funnel stage the seed lacks,
   one makes a conversation a sales conversation raising an objection, and a
   late message moves an exposed conversation to the day before;
4. the late file (events of earlier days), with the experiments seed changed
   and a rule added to seeds/path_cleaning.csv;
5. new events of old conversations (one a handoff that breaks the `never:`
   rule of the completed_without_handoff marker) and a new conversation, all
   at or before the clock;
6. only the clock moves (a new conversation 31 minutes later);
7. no event: the stage classifier takes a stage back;
8. the var exclude_development_traffic set;
9. the var abandon_after_minutes from 30 minutes to two years, with nothing
   new: only the rebuild of what reads it recounts every day's abandonments;
10. a comment added to fct_messages.sql: that model alone is built whole.

Before runs 2-9 every row of the per-conversation models, and before runs
3, 5, 6 and 7 every row of the day partials, is marked, in a column no model
reads for the keys a run leaves alone, so the rows a run writes again show: each run
rewrites the rows of the conversations of scope.scope_conversations and of
the days of scope.scope_days, and every row of a model the project's changes
rebuild whole; nothing else. The scope itself is checked against what each
batch brought, and the ledgers (audit.scope_runs, audit.partitions_rewritten)
against the scope. After every run, marts.metrics_daily must equal the
contract's metrics recomputed from that moment's conversation facts
(support/metrics_reference.py). Then the marts, the day partials and every
other model must equal, value for value and to the last bit of every double,
a re-run with nothing new and a full refresh of the same raw rows.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from support.metrics_reference import KEY, assert_same_metrics, metrics_daily, reference_inputs, reference_metrics
from support.warehouse import Warehouse, copy_project, forget_parsed_manifest

from convo_warehouse.lib.dbt_state import project_vars
from convo_warehouse.lib.generate import generate_events

# compared byte for byte: every marts table and every other model the runs build
# (the scope models say when they recomputed a row, so they differ by design)
COMPARED_SCHEMAS = ("marts", "intermediate", "staging", "quarantine", "audit")
LEDGERS = ("audit.scope_runs", "audit.partitions_rewritten")

MARKER = "(left untouched)"
# the mark of a count in a published day mart: a count no test day reaches, and positive, as
# their contracts' check constraints require (abandon_turn_daily: conversations > 0;
# ab_test_variant_daily: sessions <= exposed_conversations), which DuckDB enforces on update
COUNT_MARKER = 1_000_000_007
MARKED_AT = datetime(1900, 1, 1)
# per-conversation model -> (its key, a column to mark rows with, the marker).
# Only models keyed by conversation read the column, and only for the
# conversations they recompute, which the model has rewritten first: a mark
# never reaches another model (int_conversation_dimension_values is left out:
# metrics_by_dimension, replaced day by day, reads each of its columns for
# every conversation of a day).
CONVERSATION_MODELS = {
    "marts.fct_conversations": (["conversation_id"], "last_user_message", MARKER),
    "intermediate.int_ab_test_exposures_checked": (["test_name", "conversation_id"], "user_id", MARKER),
    "marts.ab_test_exposures": (["test_name", "conversation_id"], "user_id", MARKER),
    "marts.fct_messages": (["event_id"], "content", MARKER),
    "intermediate.int_conversation_steps_cleaned": (["conversation_id", "step_number"], "events_in_step", -1),
    "marts.fct_conversation_paths": (["conversation_id"], "path", MARKER),
    # the funnel chain: a conversation has any number of rows, and may lose some
    "intermediate.int_conversation_markers_evaluated": (["conversation_id", "marker_name"], "reached_at", MARKED_AT),
    "intermediate.int_conversation_stages_combined": (["conversation_id", "funnel_name", "stage"], "source", MARKER),
    "intermediate.int_conversation_funnels_progressed": (
        ["conversation_id", "funnel_name"], "last_stage_reached_at", MARKED_AT,
    ),
    # (source has a check constraint: the mark goes where none is)
    "marts.fct_conversation_stages": (["conversation_id", "funnel_name", "stage"], "stage_order", -1),
    "marts.funnel_dropoffs": (["conversation_id", "funnel_name"], "last_user_message", MARKER),
}
# the day partials the whole-history marts sum (replaced day by day) -> (their
# key, a column to mark rows with, the marker). Models replaced by the same
# days read them, and views summing them; so do the statistics tables every
# run rebuilds whole (STATISTICS), which a run marking them leaves out (the
# next one rebuilds them from the values it restored). The runs that change
# the project (which drop those tables) and the last run mark none.
DAY_PARTIALS = {
    "intermediate.int_conversation_days_counted": (["conversation_date"], "conversations", -1),
    "intermediate.int_funnel_stage_days_counted": (["funnel_name", "conversation_date", "stage"], "reached", -1),
    "intermediate.int_funnel_stage_seconds_bucketed": (
        ["funnel_name", "conversation_date", "stage", "seconds_bucket"], "timed_conversations", -1,
    ),
    "marts.abandon_turn_daily": (
        ["conversation_date", "channel", "agent_id", "environment", "turn"], "conversations", COUNT_MARKER,
    ),
    "marts.timing_daily": (
        ["conversation_date", "hour_of_day", "channel", "agent_id", "environment"], "conversations", COUNT_MARKER,
    ),
    "marts.ab_test_variant_daily": (
        ["conversation_date", "test_name", "variant"], "exposed_conversations", COUNT_MARKER,
    ),
    "marts.feedback_rating_daily": (["conversation_date", "rating"], "feedback_events", COUNT_MARKER),
    "intermediate.int_unknown_stage_event_days_counted": (
        ["conversation_date", "funnel_name", "stage"], "events", -1,
    ),
    "intermediate.int_objection_days_counted": (["objection", "conversation_date"], "sales_conversations", -1),
    "intermediate.int_ab_test_conversations_measured": (["test_name", "conversation_id"], "channel", MARKER),
    "intermediate.int_ab_test_variant_days_counted": (
        ["conversation_date", "test_name", "variant", "segment_type", "segment_value"], "exposed_conversations", -1,
    ),
    "intermediate.int_path_transition_days_counted": (
        ["conversation_date", "depth", "from_step", "to_step"], "conversations", -1,
    ),
    "intermediate.int_path_days_counted": (["conversation_date", "is_successful", "path"], "conversations", -1),
    "intermediate.int_divergence_population_days_counted": (
        ["conversation_date", "comparison", "segment_type", "segment_value"], "successful_conversations", -1,
    ),
    "intermediate.int_divergence_step_days_counted": (
        ["conversation_date", "comparison", "segment_type", "segment_value", "scope", "depth", "step"],
        "successful_with_step", -1,
    ),
}
# computed from every day of the partials by each run: a negative count would fail them
STATISTICS = ("int_ab_test_metrics_scored", "int_ab_test_results_scored", "int_ab_test_health_scored",
              "path_divergence_scored")
REASONS = ("has_new_events", "crossed_abandonment_window", "crossed_conversion_window", "has_new_classifier_output")
# abandoned conversations per day, as each mart counts them (the contract's
# abandonment_rate: was_abandoned over started, by the conversation's day)
ABANDONED_BY_DAY = {
    "fct_conversations": "select conversation_date, count_if(was_abandoned) from marts.fct_conversations "
                         "group by 1 order by 1",
    "metrics_daily": "select metric_date, cast(numerator as bigint) from marts.metrics_daily "
                     "where metric_name = 'abandonment_rate' and segment_type = 'all' order by 1",
    "metrics_hourly": "select metric_date, cast(sum(numerator) as bigint) from marts.metrics_hourly "
                      "where metric_name = 'abandonment_rate' and segment_type = 'all' group by 1 order by 1",
}


@dataclass
class Run:
    """What one complete run did, read from the warehouse right after it."""

    dropped: set[str]  # tables the project's changes dropped (built whole)
    scope: dict[str, dict[str, bool]]  # scope.scope_conversations: conversation -> its reasons
    scope_days: set  # scope.scope_days
    rewritten: dict[str, set] = field(default_factory=dict)  # marked model -> keys written again
    present: dict[str, set] = field(default_factory=dict)  # marked model -> keys it holds
    position: tuple = ()  # scope.scope_run: (through_load_id, clock, classified_through)
    scanned: tuple = ()  # the same, read from every raw row, staged event and classifier output
    recorded: list[tuple] = field(default_factory=list)  # the audit.scope_runs rows the run added
    days_recorded: dict[str, set] = field(default_factory=dict)  # relation -> days partitions_rewritten got
    recorded_whole: set[str] = field(default_factory=set)  # relations with a rewrote_all row
    classified: int = 0  # conversations the stage classifier classified in the run
    ran: set[str] = field(default_factory=set)  # unique ids of the nodes the run's dbt build ran
    # marts.metrics_daily after the run, and the contract's metrics recomputed from that moment's
    # conversation facts (support/metrics_reference.py)
    metrics: tuple = ()


@dataclass
class Scenario:
    warehouse: Warehouse
    runs: dict[str, Run] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)
    abandoned: dict[str, dict[str, bool]] = field(default_factory=dict)  # run -> conversation -> was_abandoned
    # before / after the abandonment var -> mart -> (day, abandoned conversations) rows
    abandoned_by_day: dict[str, dict[str, list]] = field(default_factory=dict)
    checksums: dict[str, dict[str, str]] = field(default_factory=dict)  # incremental / rerun / full_refresh


def mark(warehouse: Warehouse, models: dict) -> None:
    """Keep each model's marked column aside (main.<model>_backup) and mark every row."""
    for table, (key, column, marker) in models.items():
        backup = table.replace(".", "_") + "_backup"
        warehouse.query(f"create or replace table main.{backup} as select {', '.join(key)}, {column} from {table}")
        warehouse.query(f"update {table} set {column} = ?", [marker])


def unmark(warehouse: Warehouse, models: dict, grains: dict[str, str]) -> tuple[dict[str, set], dict[str, set]]:
    """Per marked model: the values of its grain (conversations, or days of a day partial)
    whose rows were written again (the mark gone), and those it holds. The marked rows
    get their value back; none may stay marked."""
    rewritten, present = {}, {}
    for table, (key, column, marker) in models.items():
        grain = grains[table]
        backup = table.replace(".", "_") + "_backup"
        rewritten[table] = {
            row[0] for row in warehouse.query(
                f"select distinct {grain} from {table} where {column} is distinct from ?", [marker]
            )
        }
        present[table] = {row[0] for row in warehouse.query(f"select distinct {grain} from {table}")}
        same_key = " and ".join(f"{table}.{name} is not distinct from main.{backup}.{name}" for name in key)
        warehouse.query(
            f"update {table} set {column} = main.{backup}.{column} from main.{backup} "
            f"where {same_key} and {table}.{column} = ?",
            [marker],
        )
        assert not warehouse.query(f"select 1 from {table} where {column} = ?", [marker]), table
        warehouse.query(f"drop table main.{backup}")
    return rewritten, present


def ledger_since(warehouse: Warehouse, table: str, columns: str, after) -> list[tuple]:
    if after is None:
        return warehouse.query(f"select {columns} from {table}")
    return warehouse.query(f"select {columns} from {table} where recorded_at > ?", [after])


def complete_run(warehouse: Warehouse, marked: dict | None = None, *more: str) -> Run:
    """``run_build()`` (a complete run: every replace_scope model built), with the rows of
    ``marked`` marked around it, and what it did. A run marking day partials leaves out the
    statistics tables (STATISTICS), and a run marking anything the singular tests."""
    exists = warehouse.scalar(
        "select count(*) from information_schema.tables where table_schema = 'audit' and table_name = 'scope_runs'"
    )
    after = {
        ledger: warehouse.scalar(f"select max(recorded_at) from {ledger}") if exists else None for ledger in LEDGERS
    }
    marked = marked or {}
    grains = {table: "conversation_id" if table in CONVERSATION_MODELS else "conversation_date" for table in marked}
    if set(DAY_PARTIALS) & set(marked):
        more = (*more, "--exclude", " ".join(STATISTICS))
    if marked:
        # the rows kept marked during the build break the singular tests that compare one mart
        # with another (assert_funnel_daily_adds_up_to_summary and the like)
        more = (*more, "--exclude", "test_type:singular")
    mark(warehouse, marked)
    _, dropped, result = warehouse.run_build(*more)
    rewritten, present = unmark(warehouse, marked, grains)
    run = Run(
        ran={node_result.node.unique_id for node_result in result.result.results},
        dropped=set(dropped),
        scope={
            row[0]: dict(zip(REASONS, row[1:]))
            for row in warehouse.query(f"select conversation_id, {', '.join(REASONS)} from scope.scope_conversations")
        },
        scope_days={row[0] for row in warehouse.query("select event_date from scope.scope_days")},
        rewritten=rewritten,
        present=present,
    )
    run.position = warehouse.query("select through_load_id, clock, classified_through from scope.scope_run")[0]
    run.scanned = warehouse.query(
        "select (select max(load_id) from raw.events), (select max(event_at) from staging.stg_events), "
        "greatest((select max(classified_at) from classification.stage_classifications), "
        "(select max(scored_at) from classification.message_sentiment), "
        "(select max(judged_at) from classification.conversation_judgments))"
    )[0]
    run.recorded = ledger_since(
        warehouse, "audit.scope_runs", "through_load_id, clock, classified_through", after["audit.scope_runs"]
    )
    for relation, day, whole in ledger_since(
        warehouse, "audit.partitions_rewritten", "relation_name, partition_date, rewrote_all",
        after["audit.partitions_rewritten"],
    ):
        if whole:
            run.recorded_whole.add(relation)
        else:
            run.days_recorded.setdefault(relation, set()).add(day)
    run.classified = warehouse.scalar(
        "select classified from classification.classifier_runs order by run_started_at desc limit 1"
    )
    run.metrics = (metrics_daily(warehouse), reference_metrics(*reference_inputs(warehouse), grain="metric_date"))
    return run


def mart_checksums(warehouse: Warehouse) -> dict[str, str]:
    """Table -> hash of its sorted rows (each value by repr: doubles exactly)."""
    return {
        table: warehouse.table_hash(table)
        for table in warehouse.tables(COMPARED_SCHEMAS)
        if table not in LEDGERS
    }


def abandoned(warehouse: Warehouse) -> dict[str, bool]:
    return dict(warehouse.query("select conversation_id, was_abandoned from marts.fct_conversations"))


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_events(warehouse: Warehouse, name: str, events: list[dict]) -> None:
    """A landing folder ``name`` with one JSONL file of ``events`` (event ids made up)."""
    folder = warehouse.landing / name
    folder.mkdir()
    (folder / f"{name}.jsonl").write_text("\n".join(
        json.dumps({"event_id": f"{name}-{n}", **event}) for n, event in enumerate(events)
    ) + "\n")


def event(conversation_id: str, event_type: str, at: datetime, **properties) -> dict:
    return {"conversation_id": conversation_id, "event_type": event_type, "timestamp": timestamp(at),
            "properties": {"content": "where is my order", **properties}}


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}: update the test"
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    source = tmp_path_factory.mktemp("checksum-landing")
    # Ending today: the generator's far-future rows are then quarantined (more
    # than 24 h after their load) instead of setting the warehouse clock.
    # The late file holds 2% of the first days' conversations, whose numbers
    # per day follow the date and the hours of today already past, so a seed
    # can give none on some days and hours (seed 23 at 20:05 UTC on
    # 2026-11-25). The first seed from 23 with a late file is used.
    for seed in range(23, 43):
        if generate_events(source, conversations=360, days=6, seed=seed, progress=False)["late_file"]:
            break
        shutil.rmtree(source)
        source.mkdir()
    else:
        pytest.fail("seeds 23-42 gave no late file: the late batch would test nothing")
    days = sorted(path for path in source.iterdir() if path.is_dir() and path.name != "late")
    return source, days


@pytest.fixture(scope="module")
def scenario(generated, tmp_path_factory) -> Scenario:
    source, days = generated
    root = tmp_path_factory.mktemp("incremental-scenario")
    project = copy_project(root / "project")
    warehouse = Warehouse(root / "warehouse", root / "target", project)
    story = Scenario(warehouse)
    facts = story.facts
    every_model = {**CONVERSATION_MODELS, **DAY_PARTIALS}
    vars_ = project_vars(project)

    def reparse() -> None:
        """The project changed: parse it again, as a run does (project.ensure_manifest)."""
        (warehouse.target_dir / "manifest.json").unlink()
        forget_parsed_manifest(warehouse.target_dir)

    def load(*folders, number: int) -> None:
        for folder in folders:
            shutil.copytree(folder, warehouse.landing / folder.name)
        assert warehouse.load().load_id == number

    def clock() -> datetime:
        return warehouse.scalar("select max(event_at) from staging.stg_events")

    # 1. The newest conversation of the first batch: engaged, unfinished, its
    # last event the newest in the warehouse (ahead of the generated data, less
    # than 24 h after its load, so staged), so not abandoned yet.
    now = datetime.now(UTC)
    write_events(warehouse, "open", [
        event("open-1", "conversation_started", now + timedelta(hours=2)),
        event("open-1", "user_message", now + timedelta(hours=2)),
    ])
    load(*days[0:2], number=1)
    story.runs["first"] = complete_run(warehouse)
    story.abandoned["first"] = abandoned(warehouse)

    # 2. An event an hour later moves the clock past open-1's window; an alias
    # added to the seed maps a type staged as unknown to a known one.
    write_events(warehouse, "tick", [event("tick-1", "conversation_started", now + timedelta(hours=3))])
    unknown = warehouse.scalar("select min(lower(raw_event_type)) from staging.stg_events where not is_known_type")
    assert unknown is not None, "the generated data has no unknown event type to map"
    facts["alias"] = unknown
    aliases = project / "seeds" / "event_type_aliases.csv"
    aliases.write_text(aliases.read_text().rstrip("\n") + f"\n{unknown},tool_called,,\n")
    reparse()
    load(*days[2:4], number=2)
    story.runs["alias"] = complete_run(warehouse, CONVERSATION_MODELS)
    story.abandoned["alias"] = abandoned(warehouse)

    # 3. Late events of three conversations of the first day: one moves to the
    # day before (its old day's partials lose it), one names a sales stage the
    # seed lacks, one becomes a sales conversation raising the price objection.
    moved, unknown_stage, objecting = warehouse.query(
        "select conversation_id, first_event_at, last_event_at, conversation_date "
        "from marts.fct_conversations where conversation_date = "
        "(select min(conversation_date) from marts.fct_conversations) "
        "and conversation_id not in (select conversation_id from marts.fct_sales_conversations) "
        # run 8 leaves development traffic out of the patterns marts the objection is read from
        "and environment is distinct from 'development' "
        "order by conversation_id limit 3"
    )
    # A late message a day before an exposed conversation's first event moves
    # it to the day before: the experiments partials of both days change too.
    exposed = warehouse.query(
        "select exposures.conversation_id, conversations.first_event_at, conversations.conversation_date "
        "from intermediate.int_ab_test_exposures_checked as exposures "
        "inner join marts.fct_conversations as conversations "
        "on exposures.conversation_id = conversations.conversation_id "
        "where exposures.variant_count = 1 and conversations.started "
        "order by conversations.conversation_date desc, exposures.conversation_id limit 1"
    )[0]
    facts.update(moved=moved, unknown_stage=unknown_stage[0], objecting=objecting[0], exposed=exposed)
    write_events(warehouse, "late-touch", [
        event(moved[0], "user_message", moved[1] - timedelta(days=1), content="hello?"),
        {"conversation_id": unknown_stage[0], "event_type": "stage_reached",
         "timestamp": timestamp(unknown_stage[2] + timedelta(seconds=1)),
         "properties": {"funnel": "sales", "stage": "upsold_later"}},
        event(objecting[0], "user_message", objecting[2] + timedelta(seconds=1),
              content="honestly this is too expensive for us", lead_score=80),
        event(exposed[0], "user_message", exposed[1] - timedelta(days=1)),
    ])
    load(*days[4:6], number=3)
    story.runs["late"] = complete_run(warehouse, every_model)
    facts["late_load_conversations"] = {
        row[0] for row in warehouse.query("select distinct conversation_id from staging.stg_events where load_id = 3")
    }

    # 4. The late file, a changed experiments seed (greeting_tone's intended
    # split and its variants' order: the expected variant of every exposure
    # flips) and a rule added to the path_cleaning seed.
    experiments = project / "seeds" / "experiments.csv"
    edit(experiments, "greeting_tone,formal,0,true,0.5,", "greeting_tone,formal,1,true,0.6,")
    edit(experiments, "greeting_tone,casual,1,false,0.5,", "greeting_tone,casual,0,false,0.4,")
    path_cleaning = project / "seeds" / "path_cleaning.csv"
    path_cleaning.write_text(path_cleaning.read_text().rstrip("\n") + "\n4,^never_a_step$,,added\n")
    reparse()
    load(source / "late", number=4)
    story.runs["seeds"] = complete_run(warehouse, CONVERSATION_MODELS)

    # 5. At or before the clock (which stays put): a user message and feedback
    # after the last event of two old conversations, a handoff after a
    # conversation that had completed without one, and a new conversation.
    at = clock()
    (first, first_last, first_turns), (second, second_last, _) = warehouse.query(
        "select conversation_id, last_event_at, user_turns from marts.fct_conversations "
        "where last_event_at < ? order by conversation_id limit 2",
        [at - timedelta(days=1)],
    )
    unhanded, unhanded_last = warehouse.query(
        "select markers.conversation_id, conversations.last_event_at "
        "from intermediate.int_conversation_markers_evaluated as markers "
        "inner join marts.fct_conversations as conversations "
        "on markers.conversation_id = conversations.conversation_id "
        "where markers.marker_name = 'completed_without_handoff' and conversations.last_event_at < ? "
        "and markers.conversation_id not in (?, ?) order by markers.conversation_id limit 1",
        [at - timedelta(days=1), first, second],
    )[0]
    exposure = {"test_name": "greeting_tone", "variant": "casual"}
    write_events(warehouse, "touch", [
        event(first, "user_message", first_last + timedelta(seconds=1), content="still there?"),
        event(second, "feedback_received", second_last + timedelta(seconds=1), rating="5"),
        event(unhanded, "handoff_requested", unhanded_last + timedelta(seconds=1)),
        event("open-2", "conversation_started", at),
        event("open-2", "user_message", at),
        event("open-2", "experiment_exposure", at, **exposure),
    ])
    facts.update(touched={first, second, unhanded, "open-2"}, first=(first, first_turns), unhanded=unhanded)
    load(number=5)
    story.runs["touch"] = complete_run(warehouse, every_model)
    facts["touch_clock"] = (at, clock())

    # 6. Only the clock moves: a new conversation 31 minutes after the newest event.
    write_events(warehouse, "tick-2", [event("tick-2", "conversation_started", at + timedelta(minutes=31))])
    load(number=6)
    story.runs["clock"] = complete_run(warehouse, every_model)
    moved_clock = (at, clock())
    abandon, window = timedelta(minutes=vars_["abandon_after_minutes"]), timedelta(
        hours=vars_["funnel_conversion_window_hours"]
    )
    facts["crossed"] = {
        "crossed_abandonment_window": {row[0] for row in warehouse.query(
            "select conversation_id from marts.fct_conversations where last_event_at between ? and ?",
            [moved_clock[0] - abandon, moved_clock[1] - abandon],
        )},
        "crossed_conversion_window": {row[0] for row in warehouse.query(
            "select conversation_id from marts.fct_conversations where first_event_at between ? and ?",
            [moved_clock[0] - window, moved_clock[1] - window],
        )},
    }
    story.abandoned["clock"] = abandoned(warehouse)

    # 7. No event: the classifier takes back a stage only it had reached.
    taken_back = warehouse.query(
        "select conversation_id, funnel_name, stage from marts.fct_conversation_stages "
        "where source = 'rules' order by conversation_id, stage limit 1"
    )[0]
    warehouse.query(
        "update classification.stage_classifications set reached = false, classified_at = current_timestamp::timestamp "
        "where conversation_id = ? and funnel_name = ? and stage = ?",
        list(taken_back),
    )
    facts["taken_back"] = taken_back
    story.runs["classifier"] = complete_run(warehouse, every_model)

    # 8. A var: development traffic left out of the patterns marts.
    facts["development"] = {row[0] for row in warehouse.query(
        "select conversation_id from marts.fct_conversations where environment = 'development'"
    )}
    edit(project / "dbt_project.yml", "exclude_development_traffic: false", "exclude_development_traffic: true")
    reparse()
    story.runs["var"] = complete_run(warehouse, CONVERSATION_MODELS)

    # 9. A var the conversations' facts read, with nothing new: no conversation is
    # abandoned after 30 minutes of silence any longer, only after two years. No event
    # puts a conversation or a day in the run's scope: the rebuild alone recounts them.
    story.abandoned_by_day["before"] = {mart: warehouse.query(sql) for mart, sql in ABANDONED_BY_DAY.items()}
    edit(project / "dbt_project.yml", "abandon_after_minutes: 30", "abandon_after_minutes: 1000000")
    reparse()
    story.runs["abandon_var"] = complete_run(warehouse, CONVERSATION_MODELS)
    story.abandoned_by_day["after"] = {mart: warehouse.query(sql) for mart, sql in ABANDONED_BY_DAY.items()}

    # 10. A model's SQL: fct_messages, which no model reads.
    model = project / "models" / "marts" / "conversations" / "fct_messages.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    reparse()
    story.runs["model"] = complete_run(warehouse)

    story.checksums["incremental"] = mart_checksums(warehouse)
    story.runs["rerun"] = complete_run(warehouse)
    story.checksums["rerun"] = mart_checksums(warehouse)
    scope_runs = warehouse.query("select * from audit.scope_runs order by all")
    before_refresh = warehouse.scalar("select max(recorded_at) from audit.partitions_rewritten")
    warehouse.dbt("run", "--full-refresh")
    story.checksums["full_refresh"] = mart_checksums(warehouse)
    story.facts["full_refresh_ledgers"] = (
        scope_runs == warehouse.query("select * from audit.scope_runs order by all"),
        ledger_since(warehouse, "audit.partitions_rewritten", "relation_name, partition_date, rewrote_all",
                     before_refresh),
    )
    return story


def test_each_run_rewrites_the_rows_of_its_scope_and_nothing_else(scenario):
    """A model keyed by conversation rewrites the conversations of scope_conversations, a day
    partial the days of scope_days, a model the project's changes reach every row."""
    for name, run in scenario.runs.items():
        for table, rewritten in run.rewritten.items():
            if table in run.dropped:
                expected = run.present[table]
            elif table in CONVERSATION_MODELS:
                expected = set(run.scope) & run.present[table]
            else:
                expected = run.scope_days & run.present[table]
            assert rewritten == expected, (name, table, len(rewritten), len(expected), len(run.present[table]))
    # the test can fail: the runs rewrote some keys and left others as they were
    touch = scenario.runs["touch"]
    assert touch.rewritten["marts.fct_conversations"] == scenario.facts["touched"]
    assert len(touch.present["marts.fct_conversations"]) > 10 * len(scenario.facts["touched"])
    late = scenario.runs["late"]
    for table in ("intermediate.int_conversation_days_counted", "intermediate.int_path_days_counted"):
        assert late.rewritten[table] < late.present[table], table
    assert scenario.runs["classifier"].rewritten["marts.fct_messages"] == {scenario.facts["taken_back"][0]}


def test_a_run_tests_the_new_rows_a_left_out_view_shows(scenario):
    """A view no load reaches is left out of a run while unchanged (lib/dbt_state.py), but its rows
    follow its inputs: a test that reads it and a model the run builds still runs (the new loads'
    events unique in stg_events), while a test of left-out nodes alone does not (a seed's)."""
    reads_the_view = "test.convo_warehouse.unique_combination_stg_events_event_id"
    of_a_seed = "test.convo_warehouse.unique_event_type_aliases_alias"
    for name in ("late", "touch", "clock"):
        ran = scenario.runs[name].ran
        assert "model.convo_warehouse.stg_events" not in ran, name
        assert any(unique_id.startswith(reads_the_view) for unique_id in ran), name
        assert not any(unique_id.startswith(of_a_seed) for unique_id in ran), name


def test_each_run_records_its_scope_in_the_ledgers(scenario):
    """audit.scope_runs gets the position the run covered (the newest load run, the clock and
    the newest classifier output, as a scan of every row finds them) unless nothing moved;
    audit.partitions_rewritten the days of scope_days for every replace_scope model it did
    not build whole, and a rewrote_all row for each one it did."""
    replacing = scenario.runs["first"].recorded_whole
    assert {"staging.base_events_parsed", "marts.fct_conversations", *CONVERSATION_MODELS, *DAY_PARTIALS} <= replacing
    for name, run in scenario.runs.items():
        assert run.position == run.scanned, name
        if name in ("var", "abandon_var", "model", "rerun"):
            # nothing new: the position is the one recorded before
            assert run.recorded == [] and run.scope == {} and run.scope_days == set(), name
        else:
            assert run.recorded == [run.position], name
        assert run.recorded_whole == replacing & run.dropped | (replacing if name == "first" else set()), name
        # a model built whole says so once (rewrote_all), not day by day
        days_of_models_replaced = (
            {relation: run.scope_days for relation in replacing - run.recorded_whole} if run.scope_days else {}
        )
        assert run.days_recorded == days_of_models_replaced, name
    rerun = scenario.runs["rerun"]
    assert rerun.dropped == set() and rerun.recorded_whole == set() and rerun.days_recorded == {}
    # a full refresh with nothing new: no scope run, and each replace_scope model rewrote_all once
    scope_runs_kept, refreshed = scenario.facts["full_refresh_ledgers"]
    assert scope_runs_kept
    assert sorted(relation for relation, day, whole in refreshed if whole and day is None) == sorted(replacing)
    assert all(whole for _, _, whole in refreshed)


def test_a_run_recomputes_what_changed_since_the_last_complete_run(scenario):
    """scope_conversations lists, with the reason, the conversations with events of the new
    load runs, those the clock carried across the abandonment or conversion window and those
    with new classifier output; a change to the project rebuilds what it reaches whole."""
    facts, runs = scenario.facts, scenario.runs

    def with_reason(run: Run, reason: str) -> set[str]:
        return {conversation for conversation, reasons in run.scope.items() if reasons[reason]}

    late = runs["late"]
    assert with_reason(late, "has_new_events") == facts["late_load_conversations"]

    # new events at or before the clock: those conversations, nothing else
    touch = runs["touch"]
    assert facts["touch_clock"][0] == facts["touch_clock"][1], "the touch batch moved the clock"
    assert set(touch.scope) == with_reason(touch, "has_new_events") == facts["touched"]
    assert with_reason(touch, "has_new_classifier_output") <= facts["touched"]
    assert not with_reason(touch, "crossed_abandonment_window") | with_reason(touch, "crossed_conversion_window")

    # only the clock moved: the conversations it carried across a window, and the new one
    clock = runs["clock"]
    crossed = facts["crossed"]
    assert "open-2" in crossed["crossed_abandonment_window"]
    for reason, conversations in crossed.items():
        assert with_reason(clock, reason) == conversations, reason
    assert with_reason(clock, "has_new_events") == {"tick-2"}
    assert with_reason(clock, "has_new_classifier_output") == set()
    assert set(clock.scope) == {"tick-2"} | crossed["crossed_abandonment_window"] | crossed["crossed_conversion_window"]

    # the classifier's output alone
    classifier = runs["classifier"]
    only_classified = {**dict.fromkeys(REASONS, False), "has_new_classifier_output": True}
    assert classifier.scope == {facts["taken_back"][0]: only_classified}
    assert classifier.classified == 0

    # the project's changes: the seeds or the var and what reads them, built whole; the rest left alone
    assert runs["first"].dropped == set()
    alias = runs["alias"]
    assert {"seeds.event_type_aliases", "scope.scope_conversation_lifecycle", *CONVERSATION_MODELS, *DAY_PARTIALS} <= (
        alias.dropped
    )
    assert "staging.base_events_parsed" not in alias.dropped
    seeds = runs["seeds"]
    assert {"seeds.experiments", "intermediate.int_ab_test_exposures_checked", "marts.ab_test_exposures",
            "intermediate.int_ab_test_variant_days_counted", "seeds.path_cleaning",
            "intermediate.int_conversation_steps_cleaned", "marts.fct_conversation_paths"} <= seeds.dropped
    assert not {"marts.fct_conversations", "marts.fct_messages",
                "intermediate.int_conversation_markers_evaluated"} & seeds.dropped
    # a var, with nothing new: what reads it, and nothing else
    var = runs["var"]
    assert {"marts.fct_conversation_paths", "intermediate.int_path_days_counted"} <= var.dropped
    assert {table for table in CONVERSATION_MODELS if var.rewritten[table]} == {"marts.fct_conversation_paths"}
    # a var the conversations' facts read: they and what is computed from them, not the messages
    abandon = runs["abandon_var"]
    assert {"marts.fct_conversations", "scope.scope_conversations", "marts.metrics_daily"} <= abandon.dropped
    assert not {"marts.fct_messages", "staging.base_events_parsed"} & abandon.dropped, abandon.dropped
    assert abandon.scope == {} and abandon.scope_days == set()
    # a model's SQL: that model alone
    assert runs["model"].dropped == {"marts.fct_messages"}


def test_late_events_rewrite_the_old_and_the_new_day_of_a_moved_conversation(scenario):
    """The late events reached the partials incrementally: each daily partial rewrote some
    days, the moved conversations' old and new day among them, not the whole history; and
    their marts show the new contributions."""
    facts, warehouse, late = scenario.facts, scenario.warehouse, scenario.runs["late"]
    moved, exposed = facts["moved"], facts["exposed"]
    new_day, exposed_new_day = moved[3] - timedelta(days=1), exposed[2] - timedelta(days=1)
    assert warehouse.scalar(
        "select conversation_date from marts.fct_conversations where conversation_id = ?", [moved[0]]
    ) == new_day
    assert warehouse.scalar(
        "select conversation_date from intermediate.int_ab_test_conversations_measured where conversation_id = ?",
        [exposed[0]],
    ) == exposed_new_day, "the late message did not move the exposed conversation a day back"
    days = {moved[3], new_day, exposed[2], exposed_new_day}
    assert days <= late.scope_days
    for partial in DAY_PARTIALS:
        assert partial not in late.recorded_whole and days <= late.days_recorded[partial], partial
        # every day of the scope that still holds rows was written again, and no other day
        assert late.rewritten[partial] == late.present[partial] & late.scope_days, partial
    # the days the moved conversations left and reached: the conversation partial counts all
    # four; the experiments partial the exposed one's new day (the other days may hold no
    # exposure left on some generated histories, and then no row to write)
    assert days <= late.rewritten["intermediate.int_conversation_days_counted"]
    assert exposed_new_day in late.rewritten["intermediate.int_ab_test_variant_days_counted"]
    assert warehouse.query(
        "select events, conversations from marts.funnel_unknown_stage_events "
        "where funnel_name = 'sales' and stage = 'upsold_later'"
    ) == [(1, 1)]
    assert "price" in warehouse.scalar(
        "select objection_list from marts.fct_sales_conversations where conversation_id = ?", [facts["objecting"]]
    )


def test_the_clock_the_seeds_the_var_and_the_classifier_reach_the_marts(scenario):
    """The test can fail: each change of the scenario changed the marts."""
    facts, warehouse, abandoned_after = scenario.facts, scenario.warehouse, scenario.abandoned
    # the clock alone moved abandonment of conversations loaded earlier
    assert abandoned_after["first"]["open-1"] is False and abandoned_after["alias"]["open-1"] is True
    assert abandoned_after["clock"]["open-2"] is True
    # the alias added later re-mapped events of the first load
    assert warehouse.scalar(
        "select count(*) from staging.stg_events where event_type = 'tool_called' and load_id = 1 "
        "and lower(raw_event_type) = ?",
        [facts["alias"]],
    ) > 0
    assert scenario.runs["first"].classified > 0 and scenario.runs["alias"].classified > 0
    # the new events, the broken marker rule and the stage taken back
    first, first_turns = facts["first"]
    assert warehouse.scalar(
        "select user_turns from marts.fct_conversations where conversation_id = ?", [first]
    ) == first_turns + 1
    assert not warehouse.query(
        "select 1 from intermediate.int_conversation_markers_evaluated "
        "where conversation_id = ? and marker_name = 'completed_without_handoff'",
        [facts["unhanded"]],
    ), "a marker that no longer holds kept its row"
    assert not warehouse.query(
        "select 1 from marts.fct_conversation_stages where conversation_id = ? and funnel_name = ? and stage = ?",
        list(facts["taken_back"]),
    ), "a stage the classifier took back kept its row"
    # the seeds and the var
    assert warehouse.scalar("select weight from seeds.experiments where variant = 'formal'") == 0.6
    paths = {row[0] for row in warehouse.query("select conversation_id from marts.fct_conversation_paths")}
    assert facts["development"] and not paths & facts["development"]
    var = scenario.runs["var"]
    assert var.rewritten["marts.fct_conversation_paths"] == var.present["marts.fct_conversation_paths"] == paths
    # the abandonment var recounted every day, and the daily and hourly metrics count as the facts do
    before, after = scenario.abandoned_by_day["before"], scenario.abandoned_by_day["after"]
    assert after["metrics_daily"] != before["metrics_daily"], "the var changed no day's abandonment"
    assert after["metrics_daily"] == after["metrics_hourly"] == after["fct_conversations"]


def test_metrics_daily_equals_its_independent_recomputation_after_every_run(scenario):
    """Every run, whatever it brought (new days, late events moving conversations, changed
    seeds and vars, only the clock, the classifier alone), leaves marts.metrics_daily (replaced
    day by day) equal to the contract's metrics recomputed from that moment's conversation
    facts."""
    for name, run in scenario.runs.items():
        actual, expected = run.metrics
        assert len(actual) > 100, name
        try:
            assert_same_metrics(actual, expected, KEY)
        except AssertionError as error:
            raise AssertionError(f"after the {name!r} run: {error}") from None


def test_incremental_runs_a_rerun_and_a_full_refresh_give_identical_marts(scenario):
    incremental = scenario.checksums["incremental"]
    assert {"marts.fct_conversations", "marts.metrics_daily", *DAY_PARTIALS} <= set(incremental)
    for other in ("rerun", "full_refresh"):
        compared = scenario.checksums[other]
        assert compared.keys() == incremental.keys(), other
        differing = sorted(table for table in compared if compared[table] != incremental[table])
        assert compared == incremental, (other, differing)
