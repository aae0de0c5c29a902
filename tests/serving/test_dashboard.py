"""The dashboard: its numbers against the marts, and every page in a real browser.

A module fixture generates demo data (9 days, with a fallback spike so alerts
fire, plus a few hand-made conversations whose text is Markdown), runs
`convo-warehouse run` (which publishes the snapshot), then the tests compare
what the pages' data functions return, and what headless Chromium shows for
the default period and for a chosen period and filter, with independent
queries on the *warehouse's* marts. Screenshots go to
test-output/dashboard_<page>.png. The browser test is skipped, with a
message, only when /usr/bin/chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.lib import serving
from convo_warehouse.lib.classify.pii import mask_pii
from convo_warehouse.lib.scope import Scope

from support.cli import invoke
from support.pipeline import pipeline_env

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT = REPO_ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
START_TIMEOUT_SECONDS = 120
PAGE_TIMEOUT_MS = 90_000
DAYS = 9
# The generated data stops at a fixed instant in the afternoon of its last day, not at the
# time the test runs: the newest day is then always one still running (the overview's series
# leave it out), where generating up to "now" just after midnight UTC gave that day no data.
GENERATED_UNTIL = dt.datetime(2026, 11, 26, 22, 0, tzinfo=dt.timezone.utc)
# User-derived text that Markdown would turn into an image and code (issue 27, item 12).
BEACON = "![beacon](https://tracker.invalid/beacon.png)"
BACKTICK_TOPIC = "`rm -rf` request"


def _run_env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        **pipeline_env(root),
        "CONVO_LANDING_DIR": str(root / "landing"),
        "CONVO_SERVING_DIR": str(root / "serving"),
        # The larger marts (messages, stages, conversations, hourly metrics) served from Parquet behind
        # views, as a real warehouse's are: the pages must read them that way.
        "CONVO_SERVING_PARQUET_ROWS": "1000",
        "DBT_LOG_PATH": str(root / "dbt-logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(root / "dagster_home"),
    }


def _markdown_conversations(day: dt.date) -> list[dict]:
    """Two conversations of ``day`` whose fallback topic and last user message are Markdown."""
    start = dt.datetime.combine(day, dt.time(10, 0))
    lines = []
    for number, topic in enumerate((BEACON, BACKTICK_TOPIC)):
        cid = f"markdown-{number}"
        script = [
            ("conversation_started", {"environment": "production"}),
            ("agent_message", {"content": "Hello, how can I help?"}),
            ("user_message", {"content": BEACON}),
            ("fallback_triggered", {"topic": topic}),
        ]
        for index, (event_type, properties) in enumerate(script):
            lines.append({
                "event_id": f"{cid}-{index}", "conversation_id": cid, "event_type": event_type,
                "timestamp": (start + dt.timedelta(seconds=index)).isoformat() + "Z",
                "channel": "web", "properties": properties,
            })
    return lines


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A warehouse built by `convo-warehouse run` on generated data, and its published snapshot."""
    from convo_warehouse.lib.generate import generate_events

    root = tmp_path_factory.mktemp("dashboard")
    (root / "dagster_home").mkdir()
    summary = generate_events(root / "landing", conversations=2500, days=DAYS, seed=5, incident="fallback_spike",
                              end_date=GENERATED_UNTIL.date(), now=GENERATED_UNTIL, progress=False)
    yesterday = dt.date.fromisoformat(summary["end_date"]) - dt.timedelta(days=1)
    (root / "landing" / "markdown.jsonl").write_text(
        "\n".join(json.dumps(line) for line in _markdown_conversations(yesterday)) + "\n")
    run = invoke(["run", "--quiet"], _run_env(root))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return root


def _warehouse(demo: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(demo / "warehouse.duckdb"), read_only=True)


@pytest.fixture
def snapshot_con(demo):
    snapshot = serving.current_snapshot(demo / "serving")
    con = snapshot.connect()
    yield con, snapshot
    con.close()


# ---------------------------------------------------------------------------
# Independent readings of the warehouse (plain SQL on the marts, no dashboard code)
# ---------------------------------------------------------------------------

# scope -> a where clause over fct_conversations (as the contract and the docs word it)
def _where(scope: Scope) -> tuple[str, list]:
    conditions, params = ["true"], []
    if scope.start:
        conditions.append("conversation_date >= ?")
        params.append(scope.start)
    if scope.end:
        conditions.append("conversation_date <= ?")
        params.append(scope.end)
    if scope.channels:
        conditions.append(f"coalesce(channel, 'unknown') in ({', '.join('?' for _ in scope.channels)})")
        params.extend(scope.channels)
    if not scope.include_development:
        conditions.append("(environment is null or environment != 'development')")
    return " and ".join(conditions), params


def _latest_complete_day(warehouse) -> dt.date:
    # the newest conversation day before the day of the newest event
    return warehouse.execute(
        "select max(conversation_date) from marts.fct_conversations "
        "where conversation_date < (select cast(max(last_event_at) as date) from marts.fct_conversations)"
    ).fetchone()[0]


def _expected_rates(warehouse, scope: Scope) -> dict[str, float | None]:
    """A few contract metrics over the scope, straight from fct_conversations."""
    where, params = _where(scope)
    row = warehouse.execute(
        f"""
        select count(*),
               sum(case when was_completed then 1 else 0 end) / nullif(sum(case when started then 1 else 0 end), 0),
               sum(case when had_handoff then 1 else 0 end) / nullif(sum(case when started then 1 else 0 end), 0),
               sum(case when converted then 1 else 0 end) / nullif(sum(case when started then 1 else 0 end), 0),
               sum(fallback_count) / nullif(sum(user_turns), 0)
        from marts.fct_conversations where {where}
        """,
        params,
    ).fetchone()
    return dict(zip(("conversations", "completion_rate", "handoff_rate", "conversion_rate", "fallback_rate"), row,
                    strict=True))


def _expected_funnel(warehouse, funnel: str, scope: Scope) -> dict:
    """entered, and per stage (reached, reached in order), of the scope's conversations."""
    where, params = _where(scope)
    rows = warehouse.execute(
        f"""
        select stages.stage, count(*), count(*) filter (where stages.is_reached_in_order)
        from marts.fct_conversation_stages as stages
        where stages.funnel_name = ? and stages.conversation_id in
            (select conversation_id from marts.fct_conversations where {where})
        group by 1
        """,
        [funnel, *params],
    ).fetchall()
    entered = warehouse.execute(
        f"""
        select count(distinct conversation_id) from marts.fct_conversation_stages
        where funnel_name = ? and conversation_id in (select conversation_id from marts.fct_conversations where {where})
        """,
        [funnel, *params],
    ).fetchone()[0]
    return {"entered": entered, "stages": {stage: (reached, in_order) for stage, reached, in_order in rows}}


# ---------------------------------------------------------------------------
# The pages' data functions equal the marts
# ---------------------------------------------------------------------------


def test_the_large_marts_are_read_through_views_over_parquet(demo, snapshot_con):
    """The pages below read these marts from the snapshot's Parquet files (CONVO_SERVING_PARQUET_ROWS)."""
    _con, snapshot = snapshot_con
    storage = {table: snapshot.tables[table]["storage"] for table in (
        "marts.fct_conversations", "marts.fct_messages", "marts.metrics_hourly", "marts.funnel_dropoffs",
    )}
    assert set(storage.values()) == {"parquet"}
    assert snapshot.tables["marts.fct_conversations"]["partition_by"] == "conversation_date"


def test_overview_numbers_equal_the_marts_for_the_default_and_a_chosen_scope(demo, snapshot_con):
    from convo_warehouse.dashboard.views import overview
    from convo_warehouse.lib.scope import default_period

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        end = _latest_complete_day(warehouse)
        default = Scope(start=end - dt.timedelta(days=27), end=end, include_development=False)
        chosen = Scope(start=end - dt.timedelta(days=3), end=end, channels=("web",), include_development=False)
        everything = Scope(start=end - dt.timedelta(days=27), end=end)
        expected = {scope: _expected_rates(warehouse, scope) for scope in (default, chosen, everything)}
        # the whole-history reading of metrics_daily (segment all) over the same days, for `everything`
        daily = dict(warehouse.execute(
            "select metric_name, sum(numerator) / sum(denominator) from marts.metrics_daily "
            "where segment_type = 'all' and metric_date between ? and ? and denominator is not null group by 1",
            [everything.start, everything.end],
        ).fetchall())
    finally:
        warehouse.close()
    assert default_period(con) == (default.start, default.end)
    for scope in (default, chosen, everything):
        rates = {rate.metric_name: rate for rate in overview.key_rates(con, scope)}
        for name, value in expected[scope].items():
            assert rates[name].value == pytest.approx(value, rel=1e-12), (name, scope)
    shown = {rate.metric_name: rate for rate in overview.key_rates(con, everything)}
    for name in ("completion_rate", "handoff_rate", "sales_response_rate", "avg_satisfaction_score"):
        assert shown[name].value == pytest.approx(daily[name], rel=1e-9), name
    # development traffic is left out by default: the numbers differ
    assert expected[default]["conversations"] < expected[everything]["conversations"]
    assert len(shown["conversations"].series) == DAYS - 1  # the newest day is still running


def test_metric_views_equal_metrics_daily_and_hourly_for_single_segments(snapshot_con):
    """Sums over metrics_by_conversation give metrics_daily's row for every metric, day and segment."""
    from convo_warehouse.dashboard.views.metrics import segment_types
    from convo_warehouse.lib import metric_views

    con, _snapshot = snapshot_con
    for segment_type in segment_types(con):
        expected = {
            (day, name, value_of_segment): (numerator, denominator, value)
            for day, name, value_of_segment, numerator, denominator, value in con.execute(
                "select metric_date, metric_name, segment_value, numerator, denominator, value "
                "from marts.metrics_daily where segment_type = ?",
                [segment_type],
            ).fetchall()
        }
        shown = {}
        for name in metric_views.glossary(con):
            series = metric_views.metric_series(con, name, Scope(), segment_type)
            for row in series.itertuples():
                shown[(row.period, name, row.segment_value)] = (row.numerator, row.denominator, row.value)
        assert shown.keys() == expected.keys(), segment_type
        for key, values in shown.items():
            for got, want in zip(values, expected[key], strict=True):
                assert (got is None and want is None) or got == pytest.approx(want, rel=1e-9, abs=1e-12), key
    hourly = dict(
        ((hour, segment), value) for hour, segment, value in con.execute(
            "select metric_hour, segment_value, value from marts.metrics_hourly "
            "where metric_name = 'sales_response_rate' and segment_type = 'channel'"
        ).fetchall()
    )
    series = metric_views.metric_series(con, "sales_response_rate", Scope(), "channel", "hour")
    assert {(row.period, row.segment_value): row.value for row in series.itertuples()} == pytest.approx(hourly)


def test_segment_comparison_on_the_metrics_page_equals_the_mart(snapshot_con):
    """v1.3: the Metrics page's comparison table (lib/metric_views.segment_comparison) shows the mart's
    rows for the chosen metric and segment type, best first, its best and significant values marked."""
    from convo_warehouse.dashboard.views.metrics import comparison_table
    from convo_warehouse.lib import metric_views

    con, _snapshot = snapshot_con
    for metric, segment_type in (("completion_rate", "agent_id"), ("abandonment_rate", "environment")):
        mart = {value: (rate, best, significant) for value, rate, best, significant in con.execute(
            "select segment_value, rate, is_best, is_significant from marts.segment_comparison "
            "where metric_name = ? and segment_type = ?", [metric, segment_type]).fetchall()}
        rows = metric_views.segment_comparison(con, metric, segment_type)
        assert set(rows["segment_value"]) == set(mart) and len(mart) > 1
        table = comparison_table(rows)
        for shown, value in zip(table.itertuples(), rows["segment_value"], strict=True):
            rate, best, significant = mart[value]
            assert shown.rate == fmt.percent(rate) and (shown.best == "best") == best
            assert shown.significant == ("-" if significant is None else "yes" if significant else "no")
        assert list(rows["rate"]) == sorted(rows["rate"], reverse=True)
    assert metric_views.segment_comparison(con, "no_such_metric").empty


def test_the_python_development_rule_is_the_macros(snapshot_con):
    """lib/scope.IS_DEVELOPMENT_SQL selects what metrics_by_conversation.is_development (the macro) does."""
    from convo_warehouse.lib.scope import IS_DEVELOPMENT_SQL

    con, _snapshot = snapshot_con
    python_rule = {row[0] for row in con.execute(
        f"select conversation_id from marts.fct_conversations where {IS_DEVELOPMENT_SQL}").fetchall()}
    macro = {row[0] for row in con.execute(
        "select conversation_id from marts.metrics_by_conversation where is_development").fetchall()}
    assert python_rule == macro and python_rule


def test_funnels_read_right_in_both_readings_and_equal_the_marts(demo, snapshot_con):
    from convo_warehouse.lib import funnel_views

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        end = _latest_complete_day(warehouse)
        scopes = [Scope(), Scope(start=end - dt.timedelta(days=3), end=end, channels=("web",),
                                 include_development=False)]
        expected = {(funnel, scope): _expected_funnel(warehouse, funnel, scope)
                    for funnel in ("support", "sales", "engagement") for scope in scopes}
        summary = {(funnel, stage): (reached, in_order) for funnel, stage, reached, in_order in warehouse.execute(
            "select funnel_name, stage, reached, reached_in_order from marts.funnel_summary").fetchall()}
        [(message, conversation_id)] = warehouse.execute(
            "select content, conversation_id from marts.fct_messages where content like '%@%' "
            "order by event_id limit 1").fetchall() or [(None, None)]
    finally:
        warehouse.close()
    skipped = 0
    for (funnel, scope), want in expected.items():
        for reading in funnel_views.READINGS:
            view = funnel_views.funnel_view(con, funnel, scope, reading)
            assert view.entered == want["entered"]
            for stage in view.stages:
                assert (stage.reached, stage.reached_in_order) == want["stages"].get(stage.stage, (0, 0))
                if scope == Scope():
                    assert (stage.reached, stage.reached_in_order) == summary[(funnel, stage.stage)]
                assert stage.drop_off >= 0
                for rate in (stage.from_previous, stage.share_of_entered, stage.drop_off_rate):
                    assert rate is None or 0 <= rate <= 1, (funnel, reading, stage)
            skipped += sum(b.reached > a.reached for a, b in zip(view.stages, view.stages[1:]))
    assert skipped, "the data should have stages reached more often than the one before (any order)"
    assert funnel_views.funnel_view(con, "support").reading == "any_order"
    assert funnel_views.funnel_view(con, "sales").reading == "in_order"
    if conversation_id is not None:  # the generator writes emails into some messages
        from convo_warehouse.dashboard.views import funnels

        messages = funnels.transcript(con, conversation_id)
        assert messages and all("@" not in shown["content"] for shown in messages)
        assert any("#EMAIL#" in shown["content"] for shown in messages) and "@" in message


def test_funnel_times_from_the_first_stage_equal_the_marts(snapshot_con):
    """v1.3: classified stages have times, so the support funnel has times between its stages and a
    median time to resolution; the Funnels page's exact medians over the whole history are within
    0.5% of funnel_summary's (read from its histogram)."""
    from convo_warehouse.dashboard.views.funnels import stage_frames
    from convo_warehouse.lib import funnel_views

    con, _snapshot = snapshot_con
    summary = {stage: (previous, first) for stage, previous, first in con.execute(
        "select stage, median_seconds_from_previous_stage, median_seconds_from_first_stage from marts.funnel_summary "
        "where funnel_name = 'support'").fetchall()}
    view = funnel_views.funnel_view(con, "support", Scope(), "any_order")
    assert summary["resolved"][1] is not None and summary["greeted"][0] is not None
    assert view.stages[0].median_seconds_from_first_stage is None
    for stage in view.stages:
        for shown, mart in ((stage.median_seconds_from_previous_stage, summary[stage.stage][0]),
                            (stage.median_seconds_from_first_stage, summary[stage.stage][1])):
            assert (shown is None) == (mart is None), stage.stage
            if shown is not None:
                assert shown == pytest.approx(mart, rel=0.005, abs=1e-9), stage.stage
    shown, raw = stage_frames(view)
    assert list(shown["median time from first stage"]) == [fmt.duration(stage.median_seconds_from_first_stage)
                                                           for stage in view.stages]
    assert "median_seconds_from_first_stage" in raw.columns


def test_experiment_numbers_equal_the_marts(demo, snapshot_con):
    from convo_warehouse.dashboard.views import experiments

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        results = warehouse.execute(
            "select test_name, variant, sessions, conversions, p_value from marts.ab_test_results order by 1, variant_order"
        ).fetchall()
        verdicts = dict(warehouse.execute("select test_name, verdict from marts.ab_test_health where segment_type = 'all'").fetchall())
        period_conversion = dict(warehouse.execute(
            """
            select exposures.variant, sum(case when c.converted then 1 else 0 end) / sum(case when c.started then 1 else 0 end)
            from marts.ab_test_exposures as exposures join marts.fct_conversations as c using (conversation_id)
            where exposures.test_name = 'greeting_tone' and exposures.variant_count = 1
            group by 1
            """
        ).fetchall())
    finally:
        warehouse.close()
    views = experiments.experiment_views(con)
    assert [(v.test_name, x.variant, x.sessions, x.conversions, x.p_value) for v in views for x in v.variants] == results
    assert {view.test_name: view.verdict for view in views} == verdicts
    period = experiments.variant_metrics(con, "greeting_tone", Scope())
    shown = {row.variant: row.value for row in period[period["metric_name"] == "conversion_rate"].itertuples()}
    assert shown == pytest.approx(period_conversion)


def test_pattern_numbers_equal_the_marts_and_the_events(demo, snapshot_con):
    """Over the whole history the scoped Sankey and top paths equal path_transitions and top_paths."""
    from convo_warehouse.dashboard.views import patterns

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        transitions = warehouse.execute(
            "select depth, from_step, to_step, conversations, success_share from marts.path_transitions "
            "where depth <= ? and conversations >= ? order by 1, 4 desc, 2, 3",
            [patterns.SANKEY_DEPTH, patterns.SANKEY_MIN_CONVERSATIONS],
        ).fetchall()
        top = warehouse.execute(
            "select success_group, path_rank, conversations, share_of_group, path from marts.top_paths "
            "where path_rank <= ? order by 1 desc, 2", [patterns.PATHS_SHOWN]).fetchall()
        # fallbacks per topic counted straight from the staged events, not from the breakdown mart
        fallbacks = dict(warehouse.execute(
            "select coalesce(topic, 'unknown'), count(*) from staging.stg_events "
            "where event_type = 'fallback_triggered' and is_known_type group by 1"
        ).fetchall())
        objections = warehouse.execute(
            "select objection, raised_conversations, conversion_rate_after_raised from marts.objection_outcomes"
        ).fetchall()
    finally:
        warehouse.close()
    links = patterns.sankey_links(con)
    assert [(link["depth"], link["from_step"], link["to_step"], link["conversations"]) for link in links] == [
        row[:4] for row in transitions]
    assert [link["success_share"] for link in links] == pytest.approx([row[4] for row in transitions])
    groups = patterns.top_paths(con)
    assert [(group, *row) for group in ("successful", "failed") for row in groups[group]] == [
        (group, rank, number, pytest.approx(share), path) for group, rank, number, share, path in top]
    topics = patterns.fallback_topics(con)
    assert {row["topic"]: row["fallbacks"] for row in topics} == fallbacks
    assert BEACON in fallbacks and BACKTICK_TOPIC in fallbacks
    assert sum(row["share_of_fallbacks"] for row in topics) == pytest.approx(1.0)
    shown = {(row["objection"], row["raised_conversations"], row["conversion_rate_after_raised"])
             for row in patterns.objections(con)}
    assert shown == set(objections)


def test_model_comparison_equals_the_events(demo, snapshot_con):
    from convo_warehouse.dashboard.views import models

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        expected = {model: (conversations, latency) for model, conversations, latency in warehouse.execute(
            """
            select coalesce(model, 'unknown'), count(distinct conversation_id), avg(latency_ms)
            from staging.stg_events where event_type = 'agent_message' and is_known_type group by 1
            """).fetchall()}
        completion = dict(warehouse.execute(
            """
            select coalesce(e.model, 'unknown'),
                   sum(case when c.was_completed then 1 else 0 end) / sum(case when c.started then 1 else 0 end)
            from (select distinct conversation_id, model from staging.stg_events
                  where event_type = 'agent_message' and is_known_type) as e
            join marts.fct_conversations as c using (conversation_id)
            group by 1
            """).fetchall())
    finally:
        warehouse.close()
    shown = models.model_comparison(con)
    assert {row.model: row.conversations for row in shown.itertuples()} == {
        model: number for model, (number, _) in expected.items()}
    latencies = {row.model: row.avg_latency_ms for row in shown.itertuples()}
    for model, (_, latency) in expected.items():  # no latency measured: none shown
        assert latencies[model] == pytest.approx(latency) if latency is not None else latencies[model] != latencies[model]
    assert {row.model: row.completion_rate for row in shown.itertuples()} == pytest.approx(completion)


def test_alert_and_health_numbers_equal_the_marts(demo, snapshot_con):
    from convo_warehouse.dashboard.views import alerts, health

    con, snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        by_severity = dict(warehouse.execute("select lower(severity), count(*) from marts.metric_alerts group by 1").fetchall())
        totals = warehouse.execute(
            "select sum(raw_rows), sum(staged_rows), sum(duplicates_dropped), sum(quarantined_rows) from audit.reconciliation"
        ).fetchone()
        reasons = warehouse.execute(
            "select reason, count(*) from quarantine.rejected_events group by 1 order by 2 desc, 1"
        ).fetchall()
        newest = warehouse.execute("select max(last_event_at) from marts.fct_conversations").fetchone()[0]
        rules = dict(warehouse.execute("select rule_name, metric_name from seeds.alert_rules").fetchall())
    finally:
        warehouse.close()
    assert sum(by_severity.values()) > 0, "the fallback spike should fire alerts"
    assert rules["low_sales_response_rate"] == "sales_response_rate"
    counts = alerts.counts_by_severity(alerts.fired_alerts(con))
    assert {severity: number for severity, number in counts.items() if number} == by_severity
    far = Scope(start=dt.date(2000, 1, 1), end=dt.date(2000, 1, 2))
    assert alerts.fired_alerts(con, far).empty
    shown = health.reconciliation(con)
    assert (shown.raw_rows, shown.staged_rows, shown.duplicates_dropped, shown.quarantined_rows) == totals
    assert shown.raw_rows == shown.staged_rows + shown.duplicates_dropped + shown.quarantined_rows
    assert [(row["reason"], row["rows"]) for row in health.quarantine_reasons(con)] == reasons
    fresh = health.freshness(snapshot.manifest)
    assert fresh.newest_event_at == newest.replace(tzinfo=dt.UTC)
    assert fresh.test_status in ("passed", "passed_with_warnings")


def _scopes_of_the_pages(warehouse) -> list[Scope]:
    """The default view (the last 28 complete days, production only) and a chosen period and channel."""
    end = _latest_complete_day(warehouse)
    return [Scope(start=end - dt.timedelta(days=27), end=end, include_development=False),
            Scope(start=end - dt.timedelta(days=3), end=end, channels=("web",), include_development=False)]


def test_top_abandon_turns_on_the_funnels_page_equal_fct_conversations(demo, snapshot_con):
    """The Funnels page's top abandon turns (marts.abandon_turn_daily summed over the sidebar's period
    and filters) against abandoned conversations counted in fct_conversations."""
    from convo_warehouse.dashboard.views.funnels import ABANDON_TURNS_SHOWN, abandon_turn_frames
    from convo_warehouse.lib import funnel_views

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        scopes = _scopes_of_the_pages(warehouse)
        expected = {}
        for scope in scopes:
            where, params = _where(scope)
            expected[scope] = warehouse.execute(
                f"select abandoned_at_turn, count(*) from marts.fct_conversations "
                f"where was_abandoned and abandoned_at_turn is not null and {where} group by 1 order by 2 desc, 1",
                params,
            ).fetchall()
    finally:
        warehouse.close()
    for scope in scopes:
        turns = funnel_views.abandon_turns(con, scope, ABANDON_TURNS_SHOWN)
        total = sum(count for _, count in expected[scope])
        assert turns.abandoned == total and total > 0
        assert [(turn.turn, turn.conversations) for turn in turns.turns] == expected[scope][:ABANDON_TURNS_SHOWN]
        shown, raw = abandon_turn_frames(turns)
        assert list(shown["abandoned conversations"]) == [fmt.count(count) for _, count in expected[scope][:10]]
        assert list(shown["share of the abandoned"]) == [fmt.percent(count / total)
                                                         for _, count in expected[scope][:10]]
        assert list(raw["share"]) == pytest.approx([count / total for _, count in expected[scope][:10]])
    # the default view leaves development traffic out: its numbers differ from every environment's
    end = scopes[0].end
    everything = funnel_views.abandon_turns(con, Scope(start=end - dt.timedelta(days=27), end=end))
    assert everything.abandoned > funnel_views.abandon_turns(con, scopes[0]).abandoned
    assert funnel_views.abandon_turns(con, Scope(experiment=("greeting_tone", "casual"))).variant_ignored


def test_timing_heatmap_equals_fct_conversations(demo, snapshot_con):
    """The Overview's heatmap (marts.timing_daily summed over the sidebar's period and filters): each
    weekday and UTC hour's counts and rates against fct_conversations, drawn in the right cell."""
    from convo_warehouse.dashboard.views.overview import timing_frame, timing_heatmap
    from convo_warehouse.lib import timing_views

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        scopes = _scopes_of_the_pages(warehouse)
        expected = {}
        for scope in scopes:
            where, params = _where(scope)
            expected[scope] = {(weekday, hour): counts for weekday, hour, *counts in warehouse.execute(
                f"""
                select isodow(conversation_date), hour(first_event_at), count(*),
                       count(*) filter (where initialized), count(*) filter (where initialized and engaged),
                       count(*) filter (where started), count(*) filter (where started and engaged),
                       count(*) filter (where started and was_completed)
                from marts.fct_conversations where {where} group by 1, 2
                """,
                params,
            ).fetchall()}
    finally:
        warehouse.close()
    for scope in scopes:
        cells = timing_views.timing_cells(con, scope)
        assert {(cell.weekday, cell.hour_of_day): [getattr(cell, name) for name in timing_views.COUNTS]
                for cell in cells} == expected[scope]
        figure = timing_heatmap(cells, "completion_rate")
        z = [list(row) for row in figure.data[0].z]
        assert len(z) == 7 and all(len(row) == 24 for row in z)
        for (weekday, hour), counts in expected[scope].items():
            started, completed = counts[3], counts[5]
            want = completed / started if started else None
            assert (z[weekday - 1][hour] is None) == (want is None)
            if want is not None:
                assert z[weekday - 1][hour] == pytest.approx(want)
        assert sum(value is not None for row in z for value in row) == sum(
            1 for counts in expected[scope].values() if counts[3])
        shown, raw = timing_frame(cells)
        assert list(raw["conversations"]) == [cell.conversations for cell in cells]
        assert list(shown["interaction"]) == [fmt.percent(cell.rate("interaction_rate")) for cell in cells]
    assert len(expected[scopes[0]]) > 24, "the demo should span several weekdays and hours"


def test_the_overview_and_funnels_pages_draw_the_new_sections():
    """Overview and Funnels render (Streamlit's AppTest, no browser) with the heatmap and the top abandon
    turns of a handmade snapshot, a channel name from events shown as text."""
    from streamlit.testing.v1 import AppTest

    def page(name: str) -> None:
        import datetime as dt

        import duckdb

        from convo_warehouse.dashboard.filters import Choice
        from convo_warehouse.dashboard.views import ViewContext, funnels, overview
        from convo_warehouse.lib.scope import FilterOptions, Scope

        con = duckdb.connect()
        con.execute("create schema marts")
        con.execute("create table marts.abandon_turn_daily as select * from (values "
                    "(date '2024-01-01', '![](https://host/beacon)', 'a1', 'production', 2, 3::bigint), "
                    "(date '2024-01-02', '![](https://host/beacon)', 'a1', 'production', 1, 1::bigint), "
                    "(date '2024-01-02', 'web', 'a1', 'development', 4, 9::bigint)) "
                    "as t(conversation_date, channel, agent_id, environment, turn, conversations)")
        con.execute("create table marts.timing_daily as select * from (values "
                    "(date '2024-01-01', 9, 1, '![](https://host/beacon)', 'a1', 'production', 4::bigint, 2::bigint, "
                    "1::bigint, 4::bigint, 3::bigint, 1::bigint)) as t(conversation_date, hour_of_day, weekday, "
                    "channel, agent_id, environment, conversations, initialized_conversations, "
                    "interacted_conversations, started_conversations, engaged_conversations, completed_conversations)")
        con.execute("create table marts.funnel_summary (funnel_name varchar)")
        con.execute("create table marts.dim_metrics (metric_name varchar, metric_kind varchar, is_proportion boolean, "
                    "unit varchar, description varchar, percentile double, display_order int)")
        scope = Scope(start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 2), channels=("![](https://host/beacon)",),
                      include_development=False)
        choice = Choice(scope=scope, options=FilterOptions(None, None, [], [], [], {}),
                        default_start=scope.start, default_end=scope.end)
        context = ViewContext(con=con, snapshot=None, scope=scope, choice=choice)
        if name == "funnels":
            funnels.render(context)
        else:
            overview._timing(context)  # the page's key rates need the whole metric marts

    funnels_page = AppTest.from_function(page, args=("funnels",), default_timeout=60).run()
    assert not funnels_page.exception, funnels_page.exception
    assert [header.value for header in funnels_page.subheader] == ["Where conversations are abandoned"]
    [table] = [frame.value for frame in funnels_page.dataframe]
    assert table.values.tolist() == [["2", "3", "75.0%"], ["1", "1", "25.0%"]]
    captions = [caption.value for caption in funnels_page.caption]
    assert not any("![](" in caption for caption in captions), captions
    assert len(funnels_page.get("plotly_chart")) == 1
    timing = AppTest.from_function(page, args=("timing",), default_timeout=60).run()
    assert not timing.exception, timing.exception
    assert [header.value for header in timing.subheader] == ["When conversations go well"]
    assert len(timing.get("plotly_chart")) == 1
    [table] = [frame.value for frame in timing.dataframe]
    assert table.values.tolist() == [["Monday", "09h", "4", "50.0%", "75.0%", "25.0%"]]
    assert not any("![](" in caption.value for caption in timing.caption)


def test_transcript_masks_personal_data_of_a_handmade_snapshot():
    from convo_warehouse.dashboard.views import funnels

    con = duckdb.connect()
    con.execute(
        """
        create schema marts;
        create table marts.fct_messages as select * from (values
            ('e2', 'c1', 'agent_message', timestamp '2026-11-20 10:00:05', 2, 'Thanks, I found order 12.'),
            ('e1', 'c1', 'user_message', timestamp '2026-11-20 10:00:00', 1, 'I am jo@example.com, call +44 20 7946 0958')
        ) as t(event_id, conversation_id, event_type, message_at, message_order, content)
        """
    )
    messages = funnels.transcript(con, "c1")
    assert [(m["who"], m["content"]) for m in messages] == [
        ("user", mask_pii("I am jo@example.com, call +44 20 7946 0958")),
        ("agent", "Thanks, I found order 12."),
    ]
    assert "jo@example.com" not in messages[0]["content"] and "#EMAIL#" in messages[0]["content"]


def test_scope_and_url_values_round_trip():
    from convo_warehouse.dashboard.filters import ALL_VARIANTS, scope_from

    day = dt.date(2026, 11, 1)
    assert scope_from((day, day + dt.timedelta(days=2)), ["web"], [], False, "greeting_tone:casual") == Scope(
        start=day, end=day + dt.timedelta(days=2), channels=("web",), include_development=False,
        experiment=("greeting_tone", "casual"))
    # a half-picked range (one day clicked) is that day; no period is the whole history
    assert scope_from((day,), [], [], True, ALL_VARIANTS) == Scope(start=day, end=day)
    assert scope_from((), [], [], True, None) == Scope()
    with pytest.raises(ValueError, match="starts"):
        Scope(start=day, end=day - dt.timedelta(days=1))


def test_formats_read_as_people_read_them():
    assert fmt.percent(0.1234) == "12.3%"
    assert fmt.points(0.012) == "+1.2 pts"
    assert fmt.count(12345) == "12,345"
    assert fmt.duration(42) == "42s" and fmt.duration(125) == "2m 05s" and fmt.duration(5400) == "1h 30m"
    assert fmt.milliseconds(850) == "850 ms" and fmt.milliseconds(1234) == "1.23 s"
    assert fmt.metric_value(0.5, "fraction 0..1") == "50.0%"
    assert fmt.metric_change(0.55, 0.5, "fraction 0..1") == "+5.0 pts"
    assert fmt.metric_change(110, 100, "conversations") == "+10.0%"
    assert fmt.percent(None) == fmt.MISSING
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    assert fmt.since(now - dt.timedelta(minutes=5), now) == "5 minutes ago"
    assert fmt.since(now - dt.timedelta(hours=1), now) == "1 hour ago"


def test_adding_a_page_is_one_module():
    from convo_warehouse.dashboard import views

    pages = views.discover()
    assert [page.url_path for page in pages] == [
        "overview", "funnels", "patterns", "metrics", "experiments", "models", "alerts", "health", "live",
    ]


def test_values_in_captions_are_shown_as_text():
    """Filter values come from events and from the URL: every caption or Markdown line that shows
    them escapes them (fmt.markdown_safe), so ``![](https://host/beacon)`` draws no image."""
    escaped = fmt.markdown_safe("channel ![](https://host/beacon), agent a_b `x` <b> :red[y]")
    assert escaped == r"channel \!\[\]\(https\://host/beacon\), agent a\_b \`x\` \<b\> \:red\[y\]"
    views = REPO_ROOT / "orchestration" / "convo_warehouse" / "dashboard" / "views"
    unescaped = [f"{path.name}:{number}" for path in views.glob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if "describe(" in line and "markdown_safe(" not in line and "def " not in line]
    assert unescaped == []


def test_no_page_renders_text_as_markdown_tables():
    """st.table renders cells as Markdown: every table goes through tables.show (st.dataframe)."""
    views = REPO_ROOT / "orchestration" / "convo_warehouse" / "dashboard" / "views"
    offenders = [path.name for path in views.glob("*.py") if "st.table(" in path.read_text()
                 or ".table(" in path.read_text()]
    assert offenders == []


# ---------------------------------------------------------------------------
# The dashboard in headless Chromium
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _restore_default_signals() -> None:
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def _start_dashboard(demo: Path, extra_env: dict | None = None, host: str = "127.0.0.1"):
    port = _free_port()
    log = demo / f"dashboard-{port}.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "convo_warehouse.cli", "dashboard", "--host", host, "--port", str(port)],
            cwd=REPO_ROOT,
            env={**_run_env(demo), **(extra_env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_restore_default_signals,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=3) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(process)
            raise AssertionError(f"the dashboard did not answer within {START_TIMEOUT_SECONDS} s:\n{log.read_text()[-3000:]}")
        time.sleep(1)


def _stop(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def dashboard_url(demo):
    process, url = _start_dashboard(demo)
    try:
        yield url
    finally:
        _stop(process)


_TABLE_ROWS = """() => Array.from(document.querySelectorAll('table tr')).map(
    row => Array.from(row.querySelectorAll('th, td')).map(cell => cell.textContent.trim()))"""
_METRICS = """() => Object.fromEntries(Array.from(document.querySelectorAll('[data-testid="stMetric"]')).map(
    metric => [metric.querySelector('[data-testid="stMetricLabel"]').textContent.trim(),
               metric.querySelector('[data-testid="stMetricValue"]').textContent.trim()]))"""


def _open(page, url: str, title: str, charts: int) -> None:
    """Open a page, wait for its title and at least ``charts`` rendered Plotly charts."""
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    if charts:
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}", timeout=PAGE_TIMEOUT_MS
        )
    _settle(page)
    assert "Traceback" not in page.inner_text("body")


def _settle(page) -> None:
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stSkeleton\"]') "
        "&& !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=PAGE_TIMEOUT_MS
    )
    page.wait_for_timeout(1_500)


def _shot(page, name: str) -> Path:
    path = OUTPUT / f"dashboard_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _downloads(page) -> int:
    return page.locator('[data-testid="stDownloadButton"]').count()


browser_test = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium); the dashboard browser test needs it.",
)


@browser_test
def test_every_page_in_a_browser_shows_the_marts_numbers(demo, dashboard_url):
    """Every page with its default period (production only) and, through the URL, a chosen period and channel:
    each number shown against independent queries of the warehouse."""
    from playwright.sync_api import sync_playwright

    from convo_warehouse.dashboard.views.overview import label

    warehouse = _warehouse(demo)
    try:
        end = _latest_complete_day(warehouse)
        default = Scope(start=end - dt.timedelta(days=27), end=end, include_development=False)
        chosen = Scope(start=end - dt.timedelta(days=3), end=end, channels=("web",), include_development=False)
        rates = {scope: _expected_rates(warehouse, scope) for scope in (default, chosen)}
        funnels = {scope: _expected_funnel(warehouse, "support", scope) for scope in (default, chosen)}
        sales = _expected_funnel(warehouse, "sales", chosen)
        units = dict(warehouse.execute("select metric_name, unit from marts.dim_metrics").fetchall())
        variants = warehouse.execute(
            "select variant, is_control, sessions, conversions from marts.ab_test_results order by test_name, variant_order"
        ).fetchall()
        verdicts = [row[0] for row in warehouse.execute(
            "select verdict from marts.ab_test_health where segment_type = 'all' order by test_name"
        ).fetchall()]
        by_severity = dict(warehouse.execute("select lower(severity), count(*) from marts.metric_alerts group by 1").fetchall())
        raw, staged, duplicates, quarantined = warehouse.execute(
            "select sum(raw_rows), sum(staged_rows), sum(duplicates_dropped), sum(quarantined_rows) from audit.reconciliation"
        ).fetchone()
        reasons = warehouse.execute("select reason, count(*) from quarantine.rejected_events group by 1").fetchall()
        objection_counts = warehouse.execute("select objection, raised_conversations from marts.objection_outcomes").fetchall()
        where, params = _where(chosen)
        completion_by_channel = warehouse.execute(
            f"select coalesce(channel, 'unknown'), sum(case when was_completed then 1 else 0 end) / "
            f"sum(case when started then 1 else 0 end) from marts.fct_conversations where {where} group by 1",
            params,
        ).fetchall()
    finally:
        warehouse.close()
    query = (f"?period={chosen.start}&period={chosen.end}&channel=web")

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})

            # Overview (the default page, at /): the last 28 complete days, production only.
            _open(page, dashboard_url, "Overview", charts=0)
            page.wait_for_function("document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 9",
                                   timeout=PAGE_TIMEOUT_MS)
            _settle(page)
            _shot(page, "overview")
            body = page.inner_text("body")
            assert f"{default.start:%d %b %Y} – {default.end:%d %b %Y}" in body
            assert "Snapshot published" in body and "Data up to" in body and "Include development traffic" in body
            shown = page.evaluate(_METRICS)
            for name, value in rates[default].items():
                assert shown[label(name)] == fmt.metric_value(value, units[name]), name
            assert page.locator('[data-testid="stMetric"] svg, [data-testid="stMetric"] canvas').count() >= 9
            # no Deploy button or developer menu for viewers
            assert page.get_by_text("Deploy", exact=True).count() == 0

            # The same page for a chosen period and channel, from a shared link.
            _open(page, f"{dashboard_url}/{query}", "Overview", charts=0)
            page.wait_for_function("document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 9",
                                   timeout=PAGE_TIMEOUT_MS)
            _settle(page)
            _shot(page, "overview_filtered")
            shown = page.evaluate(_METRICS)
            for name, value in rates[chosen].items():
                assert shown[label(name)] == fmt.metric_value(value, units[name]), name
            assert f"{chosen.start:%d %b %Y} – {chosen.end:%d %b %Y}" in page.inner_text("body")

            # Funnels: the support funnel (any order) for the default scope, then the chosen one; the sales
            # funnel in order; no share above 100% and no negative drop-off anywhere.
            for scope, url, shot in ((default, f"{dashboard_url}/funnels", "funnels"),
                                     (chosen, f"{dashboard_url}/funnels{query}", "funnels_filtered")):
                _open(page, url, "Funnels", charts=1)
                page.get_by_role("tab", name="support").click()
                _settle(page)
                _shot(page, shot)
                rows = page.evaluate(_TABLE_ROWS)
                expected = funnels[scope]
                for stage, (reached, _in_order) in expected["stages"].items():
                    assert any(row[:3] == [stage, fmt.count(reached), fmt.percent(reached / expected["entered"])]
                               for row in rows), (shot, stage)
                percents = [float(cell[:-1]) for row in rows for cell in row
                            if re.fullmatch(r"-?[0-9.]+%", cell)]
                assert percents and max(percents) <= 100.0 and min(percents) >= 0.0
                assert _downloads(page) >= 2
            assert page.locator('[data-testid="stChatMessage"]').count() > 0
            page.get_by_role("tab", name="sales").click()
            _settle(page)
            rows = page.evaluate(_TABLE_ROWS)
            for stage, (_reached, in_order) in sales["stages"].items():
                assert any(row[:2] == [stage, fmt.count(in_order)] for row in rows), stage
            # the other reading is one click away
            page.get_by_role("radio", name="any order", exact=True).first.click()
            wanted = [[stage, fmt.count(reached)] for stage, (reached, _in_order) in sales["stages"].items()]
            deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
            while True:  # the rerun starts a moment after the click
                rows = [row[:2] for row in page.evaluate(_TABLE_ROWS)]
                if all(expected in rows for expected in wanted) or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(500)
            for expected in wanted:
                assert expected in rows, expected
            assert "reading-sales=any+order" in page.url and "channel=web" in page.url  # the view stays shareable

            # Patterns: the Sankey, objections, and Markdown from events shown as text, not as an image.
            _open(page, f"{dashboard_url}/patterns", "Patterns", charts=1)
            _shot(page, "patterns")
            assert page.locator(".js-plotly-plot .sankey").count() >= 1
            rows = page.evaluate(_TABLE_ROWS)
            for objection, raised in objection_counts:
                assert [objection, fmt.count(raised)] in [row[:2] for row in rows], objection
            topics = [row[0] for row in rows if row]
            assert BEACON in topics and BACKTICK_TOPIC in topics
            assert page.locator('img[src*="tracker.invalid"]').count() == 0
            assert page.locator("code", has_text="rm -rf").count() == 0

            # Metrics: completion rate by channel over the chosen period and channel.
            _open(page, f"{dashboard_url}/metrics{query}&segment=channel", "Metrics over time", charts=1)
            _shot(page, "metrics")
            rows = page.evaluate(_TABLE_ROWS)
            for channel, value in completion_by_channel:
                assert [channel, fmt.percent(value)] in [row[:2] for row in rows], channel
            assert "segment=channel" in page.url and "channel=web" in page.url

            # Experiments: sessions and conversions per variant, and each verdict.
            _open(page, f"{dashboard_url}/experiments", "Experiments", charts=len(verdicts))
            _shot(page, "experiments")
            rows = page.evaluate(_TABLE_ROWS)
            for variant, is_control, sessions, conversions in variants:
                name = variant + (" (control)" if is_control else "")
                assert [name, fmt.count(sessions), fmt.count(conversions)] in [row[:3] for row in rows], variant
            body = page.inner_text("body")
            for verdict in verdicts:
                assert f"Verdict: {verdict}" in body

            # Models, alerts (whole history: the fallback spike is in the default period), data health.
            _open(page, f"{dashboard_url}/models", "Models", charts=1)
            _shot(page, "models")
            assert _downloads(page) >= 1
            _open(page, f"{dashboard_url}/alerts", "Alerts", charts=1)
            _shot(page, "alerts")
            shown = page.evaluate(_METRICS)
            for severity in ("high", "medium", "low"):
                assert shown[f"{severity.capitalize()} severity"] == fmt.count(by_severity.get(severity, 0))
            _open(page, f"{dashboard_url}/health", "Data health", charts=1)
            _shot(page, "health")
            shown = page.evaluate(_METRICS)
            assert shown["Raw rows"] == fmt.count(raw)
            assert shown["Staged"] == fmt.count(staged)
            assert shown["Duplicates dropped"] == fmt.count(duplicates)
            assert shown["Quarantined"] == fmt.count(quarantined)
            rows = page.evaluate(_TABLE_ROWS)
            for reason, number in reasons:
                assert [reason, fmt.count(number)] in [row[:2] for row in rows], reason
        finally:
            browser.close()
    for name in ("overview", "overview_filtered", "funnels", "funnels_filtered", "patterns", "metrics", "experiments",
                 "models", "alerts", "health"):
        assert (OUTPUT / f"dashboard_{name}.png").stat().st_size > 20_000, name


@browser_test
def test_a_password_protects_the_dashboard_and_beyond_loopback_it_is_required(demo):
    from playwright.sync_api import sync_playwright

    refused = subprocess.run(
        [sys.executable, "-m", "convo_warehouse.cli", "dashboard", "--host", "0.0.0.0", "--port", str(_free_port())],
        cwd=REPO_ROOT, env={key: value for key, value in _run_env(demo).items() if key != "CONVO_DASHBOARD_PASSWORD"},
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode != 0 and "CONVO_DASHBOARD_PASSWORD" in refused.stderr
    process, url = _start_dashboard(demo, {"CONVO_DASHBOARD_PASSWORD": "s3cret-words"})
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(url, wait_until="domcontentloaded")
                page.get_by_text("Password").first.wait_for(timeout=PAGE_TIMEOUT_MS)
                assert page.locator('[data-testid="stMetric"]').count() == 0
                page.get_by_label("Password", exact=True).fill("wrong")
                page.get_by_role("button", name="Sign in").click()
                page.get_by_text("Wrong password.").wait_for(timeout=PAGE_TIMEOUT_MS)
                page.get_by_label("Password", exact=True).fill("s3cret-words")
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("heading", name="Overview", exact=True).wait_for(timeout=PAGE_TIMEOUT_MS)
                _shot(page, "signed_in")
            finally:
                browser.close()
    finally:
        _stop(process)


def test_scope_dataclass_is_hashable_for_caching():
    """Scopes are dict keys in tests and Streamlit caches: frozen and hashable."""
    scope = Scope(channels=("web",))
    assert {scope: 1}[dataclasses.replace(scope)] == 1
