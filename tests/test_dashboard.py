"""The dashboard: its numbers against the marts, and every page in a real browser.

A module fixture generates demo data (9 days, with a fallback spike so alerts
fire), runs `convo-warehouse run` (which publishes the snapshot), then the
tests compare what the pages' data functions return, and what headless
Chromium shows, with independent queries on the *warehouse's* marts.
Screenshots go to test-output/dashboard_<page>.png. The browser test is
skipped, with a message, only when /usr/bin/chromium is not installed
(.ci/run installs it).
"""

from __future__ import annotations

import datetime as dt
import os
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

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = REPO_ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
RUN_TIMEOUT_SECONDS = 1200
START_TIMEOUT_SECONDS = 120
PAGE_TIMEOUT_MS = 90_000


def _run_env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CONVO_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "CONVO_LANDING_DIR": str(root / "landing"),
        "CONVO_SERVING_DIR": str(root / "serving"),
        # The larger marts (messages, stages, conversations, hourly metrics) served from Parquet behind
        # views, as a real warehouse's are: the pages must read them that way.
        "CONVO_SERVING_PARQUET_ROWS": "1000",
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "dbt-logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(root / "dagster_home"),
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A warehouse built by `convo-warehouse run` on generated data, and its published snapshot."""
    from convo_warehouse.lib.generate import generate_events

    root = tmp_path_factory.mktemp("dashboard")
    (root / "dagster_home").mkdir()
    generate_events(root / "landing", conversations=2500, days=9, seed=5, incident="fallback_spike", progress=False)
    run = subprocess.run(
        [sys.executable, "-m", "convo_warehouse.cli", "run", "--quiet"],
        cwd=REPO_ROOT, env=_run_env(root), capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS,
    )
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


def _latest_complete_day(warehouse) -> dt.date:
    # Independent reading of "latest complete day": the newest metric day before the newest event's day.
    return warehouse.execute(
        """
        select max(metric_date) from marts.metrics_daily
        where segment_type = 'all'
            and metric_date < (select cast(max(last_event_at) as date) from marts.fct_conversations)
        """
    ).fetchone()[0]


def _expected_key_rates(warehouse, day: dt.date) -> dict[str, tuple[float | None, float | None, str]]:
    """metric -> (value on day, value 7 days earlier, unit), straight from the warehouse."""
    from convo_warehouse.dashboard.views.overview import KEY_METRICS

    expected = {}
    for name in KEY_METRICS:
        values = dict(
            warehouse.execute(
                "select metric_date, value from marts.metrics_daily "
                "where segment_type = 'all' and metric_name = ? and metric_date in (?, ?)",
                [name, day, day - dt.timedelta(days=7)],
            ).fetchall()
        )
        unit = warehouse.execute("select unit from marts.dim_metrics where metric_name = ?", [name]).fetchone()[0]
        expected[name] = (values.get(day), values.get(day - dt.timedelta(days=7)), unit)
    return expected


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


def test_overview_numbers_equal_the_marts(demo, snapshot_con):
    from convo_warehouse.dashboard.views import overview

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        day = _latest_complete_day(warehouse)
        expected = _expected_key_rates(warehouse, day)
    finally:
        warehouse.close()
    assert overview.latest_complete_day(con) == day
    rates = overview.key_rates(con, day)
    assert [rate.metric_name for rate in rates] == list(overview.KEY_METRICS)
    for rate in rates:
        value, week_ago, unit = expected[rate.metric_name]
        assert (rate.value, rate.week_ago, rate.unit) == (value, week_ago, unit), rate.metric_name
        assert rate.series[-1] == (day, value)
        assert len(rate.series) == 9 - 1  # 9 generated days, the newest still running


def test_funnel_numbers_equal_the_marts_and_text_is_masked(demo, snapshot_con):
    from convo_warehouse.dashboard.views import funnels

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        summary = warehouse.execute(
            "select funnel_name, stage, reached, conversion_rate, drop_off from marts.funnel_summary order by 1, stage_order"
        ).fetchall()
        [(conversation_id,)] = warehouse.execute(
            "select conversation_id from marts.fct_messages where content like '%@%' order by event_id limit 1"
        ).fetchall() or [(None,)]
    finally:
        warehouse.close()
    shown = [
        (row.funnel_name, row.stage, row.reached, row.conversion_rate, row.drop_off)
        for name in funnels.funnel_names(con)
        for row in funnels.stages(con, name)
    ]
    assert shown == summary
    if conversation_id is not None:  # the generator writes emails into some messages
        messages = funnels.transcript(con, conversation_id)
        assert messages and all("@" not in message["content"] for message in messages)
        assert any("#EMAIL#" in message["content"] for message in messages)


def test_experiment_numbers_equal_the_marts(demo, snapshot_con):
    from convo_warehouse.dashboard.views import experiments

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        results = warehouse.execute(
            "select test_name, variant, sessions, conversions, p_value from marts.ab_test_results order by 1, variant_order"
        ).fetchall()
        verdicts = dict(warehouse.execute("select test_name, verdict from marts.ab_test_health where segment_type = 'all'").fetchall())
    finally:
        warehouse.close()
    views = experiments.experiment_views(con)
    assert [(v.test_name, x.variant, x.sessions, x.conversions, x.p_value) for v in views for x in v.variants] == results
    assert {view.test_name: view.verdict for view in views} == verdicts


def test_pattern_numbers_equal_the_marts_and_the_events(demo, snapshot_con):
    from convo_warehouse.dashboard.views import patterns

    con, _snapshot = snapshot_con
    warehouse = _warehouse(demo)
    try:
        transitions = warehouse.execute(
            "select depth, from_step, to_step, conversations from marts.path_transitions "
            "where depth <= ? and conversations >= ? order by 1, 4 desc, 2, 3",
            [patterns.SANKEY_DEPTH, patterns.SANKEY_MIN_CONVERSATIONS],
        ).fetchall()
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
    assert [(link["depth"], link["from_step"], link["to_step"], link["conversations"]) for link in links] == transitions
    topics = patterns.fallback_topics(con)
    assert {row["topic"]: row["fallbacks"] for row in topics} == fallbacks
    assert sum(row["share_of_fallbacks"] for row in topics) == pytest.approx(1.0)
    shown = {(row["objection"], row["raised_conversations"], row["conversion_rate_after_raised"])
             for row in patterns.objections(con)}
    assert shown == set(objections)


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
    finally:
        warehouse.close()
    assert sum(by_severity.values()) > 0, "the fallback spike should fire alerts"
    counts = alerts.counts_by_severity(alerts.fired_alerts(con))
    assert {severity: number for severity, number in counts.items() if number} == by_severity
    shown = health.reconciliation(con)
    assert (shown.raw_rows, shown.staged_rows, shown.duplicates_dropped, shown.quarantined_rows) == totals
    assert shown.raw_rows == shown.staged_rows + shown.duplicates_dropped + shown.quarantined_rows
    assert [(row["reason"], row["rows"]) for row in health.quarantine_reasons(con)] == reasons
    fresh = health.freshness(snapshot.manifest)
    assert fresh.newest_event_at == newest.replace(tzinfo=dt.UTC)
    assert fresh.test_status in ("passed", "passed_with_warnings")


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
        "overview", "funnels", "patterns", "metrics", "experiments", "alerts", "health", "live",
    ]


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


@pytest.fixture(scope="module")
def dashboard_url(demo):
    port = _free_port()
    log = demo / "dashboard.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "convo_warehouse.cli", "dashboard", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=_run_env(demo),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_restore_default_signals,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the dashboard exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=3) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not answer within {START_TIMEOUT_SECONDS} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass


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
    page.wait_for_function(
        "!document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=PAGE_TIMEOUT_MS
    )
    page.wait_for_timeout(1_500)
    assert "Traceback" not in page.inner_text("body")


def _shot(page, name: str) -> Path:
    path = OUTPUT / f"dashboard_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium); the dashboard browser test needs it.",
)
def test_every_page_in_a_browser_shows_the_marts_numbers(demo, dashboard_url):
    from playwright.sync_api import sync_playwright

    warehouse = _warehouse(demo)
    try:
        day = _latest_complete_day(warehouse)
        key_rates = _expected_key_rates(warehouse, day)
        support = warehouse.execute(
            "select stage, reached, conversion_from_start from marts.funnel_summary where funnel_name = 'support' order by stage_order"
        ).fetchall()
        latest_completion = warehouse.execute(
            "select metric_date, value from marts.metrics_daily where metric_name = 'completion_rate' "
            "and segment_type = 'all' order by metric_date desc limit 1"
        ).fetchone()
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
        top_divergence = warehouse.execute(
            "select step, share_successful, share_failed from marts.path_divergence where comparison = 'overall' "
            "and segment_type = 'all' and scope = 'anywhere' and divergence_rank = 1"
        ).fetchone()
        objection_counts = warehouse.execute("select objection, raised_conversations from marts.objection_outcomes").fetchall()
    finally:
        warehouse.close()

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})

            # Overview (the default page, at /): every key rate, and the freshness sidebar.
            _open(page, dashboard_url, "Overview", charts=0)
            page.wait_for_function("document.querySelectorAll('[data-testid=\"stMetric\"]').length >= 9", timeout=PAGE_TIMEOUT_MS)
            page.wait_for_timeout(1_500)
            _shot(page, "overview")
            body = page.inner_text("body")
            assert f"{day:%A %d %B %Y}" in body
            assert "Snapshot published" in body and "Data up to" in body
            metrics = page.evaluate(_METRICS)
            from convo_warehouse.dashboard.views.overview import label

            for name, (value, week_ago, unit) in key_rates.items():
                assert metrics[label(name)] == fmt.metric_value(value, unit), name
            assert page.locator('[data-testid="stMetric"] svg, [data-testid="stMetric"] canvas').count() >= 9  # sparklines

            # Funnels: the support funnel's stage table and a transcript.
            _open(page, f"{dashboard_url}/funnels", "Funnels", charts=1)
            page.get_by_role("tab", name="support").click()
            page.wait_for_timeout(2_000)
            _shot(page, "funnels")
            rows = page.evaluate(_TABLE_ROWS)
            for stage, reached, from_start in support:
                assert [stage, fmt.count(reached)] in [row[:2] for row in rows], stage
                assert any(row[0] == stage and fmt.percent(from_start) in row for row in rows), stage
            assert page.locator('[data-testid="stChatMessage"]').count() > 0

            # Patterns: the Sankey, the top divergence step with its shares, every objection.
            _open(page, f"{dashboard_url}/patterns", "Patterns", charts=1)
            _shot(page, "patterns")
            assert page.locator(".js-plotly-plot .sankey").count() >= 1
            rows = page.evaluate(_TABLE_ROWS)
            step, share_successful, share_failed = top_divergence
            assert any(row[0] == step and fmt.percent(share_successful) in row and fmt.percent(share_failed) in row
                       for row in rows), step
            for objection, raised in objection_counts:
                assert [objection, fmt.count(raised)] in [row[:2] for row in rows], objection

            # Metrics: completion rate, segment all: the latest day's value.
            _open(page, f"{dashboard_url}/metrics", "Metrics over time", charts=1)
            _shot(page, "metrics")
            rows = page.evaluate(_TABLE_ROWS)
            assert ["all", fmt.percent(latest_completion[1])] in [row[:2] for row in rows]
            assert f"Values on {latest_completion[0]:%Y-%m-%d}" in page.inner_text("body")

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

            # Alerts: counts per severity.
            _open(page, f"{dashboard_url}/alerts", "Alerts", charts=1)
            _shot(page, "alerts")
            metrics = page.evaluate(_METRICS)
            for severity in ("high", "medium", "low"):
                assert metrics[f"{severity.capitalize()} severity"] == fmt.count(by_severity.get(severity, 0))

            # Data health: reconciliation and quarantine reasons.
            _open(page, f"{dashboard_url}/health", "Data health", charts=1)
            _shot(page, "health")
            metrics = page.evaluate(_METRICS)
            assert metrics["Raw rows"] == fmt.count(raw)
            assert metrics["Staged"] == fmt.count(staged)
            assert metrics["Duplicates dropped"] == fmt.count(duplicates)
            assert metrics["Quarantined"] == fmt.count(quarantined)
            rows = page.evaluate(_TABLE_ROWS)
            for reason, number in reasons:
                assert [reason, fmt.count(number)] in [row[:2] for row in rows], reason
        finally:
            browser.close()
    for name in ("overview", "funnels", "patterns", "metrics", "experiments", "alerts", "health"):
        assert (OUTPUT / f"dashboard_{name}.png").stat().st_size > 20_000, name
