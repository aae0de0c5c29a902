"""The read API and the read commands: their numbers, their JSON, and that they work while a run writes.

A module fixture generates a small demo and runs `convo-warehouse run` (which
publishes a snapshot; the larger marts, metrics_daily among them, as
day-partitioned Parquet behind views, as a real warehouse's are). The API is
tested in-process (Starlette's test client) and as a real server on
127.0.0.1 with a free port; the CLI through its entry point in subprocesses
(the runs, and the reads while a run holds the warehouse) and through click's
runner in this process (the other reads).
The last tests run `convo-warehouse run` again: a run failing half-way (an
invalid stage rules file) leaves the snapshot untouched; then, while a run
on new data holds the warehouse, every read command, the API server and a
SQLAlchemy reader in another process holding the snapshot open answer
without waiting; that run publishes a new version and a run without new
files none. Every subprocess has a time limit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from convo_warehouse.api.app import SNAPSHOT_HEADER
from convo_warehouse.lib import chat_analytics, file_modes, serving
from convo_warehouse.lib.warehouse import lock_holders

from support.cli import invoke
from support.pipeline import pipeline_env

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_SECONDS = 1200
TOKEN = "read-token-1"
# The generated data ends on a fixed day, not today: a run fails on a new
# `high` metric alert, and an hour of random data that happens to cross an
# alert's threshold on one day but not another made this file pass or fail
# by the date it ran (the negative_sentiment rule fired on 2026-11-25).
END_DATE = "2026-03-10"
# Low enough that the larger marts (metrics_daily among them) are served from day-partitioned
# Parquet behind views, as a real warehouse's are.
PARQUET_ROWS = 50
# A query that waited on a lock would fail or stall; on a busy 2-core machine
# a plain count over a small snapshot stays far below this.
MAX_QUERY_SECONDS = 2.0

# A BI tool's reader: one connection held open on the snapshot and one that reconnects
# through `current` each time, querying metrics_daily in a loop until told to stop.
READER = textwrap.dedent(
    """
    import json, os, sys, time
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    path, stop_file, out = sys.argv[1:4]
    url = f"duckdb:///{path}"
    query = sqlalchemy.text("select count(*), sum(value) from marts.metrics_daily")
    held, fresh = [], []

    def timed(connection, results):
        started = time.monotonic()
        try:
            count, total = connection.execute(query).one()
            results.append({"ok": True, "seconds": time.monotonic() - started, "rows": count, "sum": total})
        except Exception as error:  # recorded, the test fails on it
            results.append({"ok": False, "seconds": time.monotonic() - started, "error": str(error)})

    holding = sqlalchemy.create_engine(url, connect_args={"read_only": True})
    reconnecting = sqlalchemy.create_engine(url, connect_args={"read_only": True}, poolclass=NullPool)
    with holding.connect() as connection:
        timed(connection, held)
        print("ready", flush=True)
        while not os.path.exists(stop_file):
            timed(connection, held)
            with reconnecting.connect() as again:
                timed(again, fresh)
            time.sleep(0.05)
    with open(out, "w") as handle:
        json.dump({"held": held, "fresh": fresh}, handle)
    """
)


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        **pipeline_env(root),
        "CONVO_LANDING_DIR": str(root / "landing"),
        "CONVO_SERVING_DIR": str(root / "serving"),
        "CONVO_SERVING_PARQUET_ROWS": str(PARQUET_ROWS),
        "DBT_LOG_PATH": str(root / "dbt-logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(root / "dagster_home"),
        **extra,
    }
    env.pop("CONVO_API_TOKENS", None)
    return env


def _cli(root: Path, *args: str, timeout: int = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convo_warehouse.cli", *args], cwd=REPO_ROOT,
                          env=_env(root, **extra), capture_output=True, text=True, timeout=timeout)


def _read(root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """A read command run in this process (``support/cli.py``) with ``_env(root)``: the command's
    own code without a Python start-up (``_cli`` runs the entry point as a process)."""
    return invoke(list(args), _env(root, **extra))


def _run(root: Path, **settings: str) -> subprocess.CompletedProcess:
    """`convo-warehouse run` on ``root``, in this process (``support/cli.py``)."""
    return invoke(["run", "--quiet"], _env(root, **settings))


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    from convo_warehouse.lib.generate import generate_events

    root = tmp_path_factory.mktemp("read-surfaces")
    (root / "dagster_home").mkdir()
    generate_events(root / "landing" / "first", conversations=900, days=5, seed=13, end_date=END_DATE, progress=False)
    run = _run(root)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return root


@pytest.fixture
def client(published):
    from starlette.testclient import TestClient

    from convo_warehouse.api.app import ApiConfig, create_app

    with TestClient(create_app(ApiConfig(serving_dir=published / "serving", tokens=(TOKEN,))),
                    base_url="http://127.0.0.1") as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


def _snapshot_rows(root: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = serving.current_snapshot(root / "serving").connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- the API, in-process


def test_api_metrics_equal_metrics_daily_for_single_segments(client, published):
    for metric in ("completion_rate", "conversations", "sales_response_rate", "avg_first_response_ms"):
        expected = {
            (str(day), segment): (numerator, denominator, value)
            for day, segment, numerator, denominator, value in _snapshot_rows(
                published,
                "select metric_date, segment_value, numerator, denominator, value from marts.metrics_daily "
                "where metric_name = ? and segment_type = 'channel'",
                [metric],
            )
        }
        answer = client.get(f"/api/metrics/{metric}", params={"period": "all", "segment_type": "channel"})
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        shown = {(row["period"], row["segment_value"]): (row["numerator"], row["denominator"], row["value"])
                 for row in payload["series"]}
        assert shown.keys() == expected.keys()
        for key, (numerator, denominator, value) in shown.items():
            assert numerator == pytest.approx(expected[key][0]) and value == pytest.approx(expected[key][2])
            assert denominator == expected[key][1] or denominator == pytest.approx(expected[key][1])
        info = payload["metric"]
        if info["kind"] == "count" or info["is_proportion"]:  # counts are integers, rates fractions
            assert all(isinstance(row["numerator"], int) for row in payload["series"])
        if info["is_proportion"]:
            assert all(0 <= row["value"] <= 1 for row in payload["series"])
    # one segment value over a chosen period: summed numerators over summed denominators
    days = sorted({row[0] for row in _snapshot_rows(published, "select distinct metric_date from marts.metrics_daily")})
    start, end = days[1], days[-2]
    numerator, denominator = _snapshot_rows(
        published,
        "select sum(numerator), sum(denominator) from marts.metrics_daily where metric_name = 'completion_rate' "
        "and segment_type = 'channel' and segment_value = 'web' and metric_date between ? and ?",
        [start, end],
    )[0]
    payload = client.get("/api/metrics/completion_rate", params={
        "start": str(start), "end": str(end), "segment_type": "channel", "segment_value": "web"}).json()
    [total] = payload["totals"]
    assert (total["numerator"], total["denominator"]) == (int(numerator), int(denominator))
    assert total["value"] == pytest.approx(numerator / denominator)
    assert payload["scope"]["start"] == str(start) and payload["snapshot"]["version"]


def test_api_segment_comparison_equals_the_mart(client, published):
    """v1.3: /api/segment-comparison serves marts.segment_comparison, whole or for one metric and
    segment type, counts as integers and days as YYYY-MM-DD."""
    expected = {value: (int(n), rate, p_value, best) for value, n, rate, p_value, best in _snapshot_rows(
        published, "select segment_value, sample_size, rate, p_value, is_best from marts.segment_comparison "
                   "where metric_name = 'completion_rate' and segment_type = 'channel'")}
    assert len(expected) > 1
    payload = client.get("/api/segment-comparison", params={"metric": "completion_rate", "segment_type": "channel"})
    assert payload.status_code == 200, payload.text
    rows = payload.json()["rows"]
    shown = {row["segment_value"]: (row["sample_size"], row["rate"], row["p_value"], row["is_best"]) for row in rows}
    assert shown.keys() == expected.keys()
    for value, (n, rate, p_value, best) in shown.items():
        assert (n, best) == (expected[value][0], expected[value][3]) and isinstance(n, int)
        assert rate == pytest.approx(expected[value][1])
        assert (p_value is None and expected[value][2] is None) or p_value == pytest.approx(expected[value][2])
    assert [row["rate"] for row in rows] == sorted((row["rate"] for row in rows), reverse=True)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rows[0]["period_start"])
    everything = client.get("/api/segment-comparison").json()["rows"]
    # every proportion metric with a denominator somewhere (semantic_rephrase_rate has none
    # without an embedding model)
    proportions = {row[0] for row in _snapshot_rows(
        published, "select metric_name from marts.dim_metrics where is_proportion and metric_name in "
                   "(select metric_name from marts.metrics_daily where denominator > 0)")}
    assert "completion_rate" in proportions
    assert {row["metric_name"] for row in everything} == proportions
    assert {"environment", "channel"} <= {row["segment_type"] for row in everything}


def test_api_funnels_read_right_and_experiments_equal_the_marts(client, published):
    listed = {funnel["funnel_name"]: funnel["counting"] for funnel in client.get("/api/funnels").json()["funnels"]}
    assert listed == {"support": "any_order", "sales": "in_order", "engagement": "in_order"}
    summary = {(funnel, stage): (reached, in_order) for funnel, stage, reached, in_order in _snapshot_rows(
        published, "select funnel_name, stage, reached, reached_in_order from marts.funnel_summary")}
    for funnel, counting in listed.items():
        for reading in ("any_order", "in_order"):
            payload = client.get(f"/api/funnels/{funnel}", params={"period": "all", "reading": reading}).json()
            view = payload["funnel"]
            assert view["counting"] == counting and view["reading"] == reading
            for stage in view["stages"]:
                assert (stage["reached"], stage["reached_in_order"]) == summary[(funnel, stage["stage"])]
                assert stage["drop_off"] >= 0 and isinstance(stage["count"], int)
                assert stage["from_previous"] is None or 0 <= stage["from_previous"] <= 1
            if funnel == "support":  # v1.3: classified stages have times, so resolution has a median time
                resolved = next(stage for stage in view["stages"] if stage["stage"] == "resolved")
                assert resolved["median_seconds_from_first_stage"] > 0
    results = _snapshot_rows(published, "select test_name, variant, sessions, conversions from marts.ab_test_results "
                                        "order by test_name, variant_order")
    payload = client.get("/api/experiments").json()
    assert [(test["test_name"], row["variant"], row["sessions"], row["conversions"])
            for test in payload["experiments"] for row in test["results"]] == results
    assert client.get(f"/api/experiments/{results[0][0]}").json()["experiment"]["test_name"] == results[0][0]


def test_api_errors_and_tokens(client):
    from starlette.testclient import TestClient

    assert client.get("/api/metrics/not_a_metric").status_code == 404
    assert "known metrics" in client.get("/api/metrics/not_a_metric").json()["error"]
    assert client.get("/api/funnels/nope").status_code == 404
    assert client.get("/api/experiments/nope").status_code == 404
    bad = client.get("/api/metrics/completion_rate", params={"start": "2026-13-01"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]
    assert client.get("/api/metrics/completion_rate", params={"variant": "no-colon"}).status_code == 400
    backwards = client.get("/api/metrics/completion_rate", params={"start": "2026-02-01", "end": "2026-01-01"})
    assert backwards.status_code == 400
    anonymous = TestClient(client.app, base_url="http://127.0.0.1")
    assert anonymous.get("/api/metrics").status_code == 401
    assert anonymous.get("/api/openapi.json").status_code == 401
    assert anonymous.get("/api/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert anonymous.get("/api/health").status_code == 200  # liveness needs no token
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.") and {"/api/metrics/{name}", "/api/funnels/{name}",
                                                     "/api/experiments"} <= set(schema["paths"])
    parameters = {p["name"] for p in schema["paths"]["/api/metrics/{name}"]["get"]["parameters"]}
    assert {"start", "end", "segment_type", "channel", "exclude_development", "variant"} <= parameters


# --------------------------------------------------------------------------- the chat-analytics document's routes


def _warehouse_rows(root: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Rows of the run's warehouse (staged events, marts), read-only: the independent side of a comparison."""
    import duckdb

    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# Per conversation, straight from the staged events (known types, as the contract counts them): its day
# (UTC date of the first event), first and last event, user messages, handoff, fallbacks, conversion and
# milliseconds from the first user message to the first agent message at or after it.
EVENT_FACTS = """
with events as (
    select conversation_id, event_type, event_at, rating, topic
    from staging.stg_events
    where is_known_type and conversation_id is not null
),
facts as (
    select conversation_id, min(event_at) as first_at, max(event_at) as last_at,
           count(*) filter (where event_type = 'user_message') as user_messages,
           bool_or(event_type = 'handoff_requested') as handoff,
           count(*) filter (where event_type = 'fallback_triggered') as fallbacks,
           bool_or(event_type = 'conversion') as converted,
           min(event_at) filter (where event_type = 'user_message') as first_user_at
    from events group by conversation_id
),
replies as (
    select facts.conversation_id, min(events.event_at) as reply_at
    from facts join events on events.conversation_id = facts.conversation_id
        and events.event_type = 'agent_message' and events.event_at >= facts.first_user_at
    group by facts.conversation_id
)
select facts.conversation_id, cast(facts.first_at as date) as day, facts.first_at, facts.last_at,
       facts.user_messages, facts.handoff, facts.fallbacks, facts.converted,
       epoch_ms(replies.reply_at) - epoch_ms(facts.first_user_at) as first_response_ms
from facts left join replies on facts.conversation_id = replies.conversation_id
"""


def _expected_dashboard(root: Path, start, end) -> dict:
    """GET /api/analytics/dashboard's answer computed from the warehouse's staged events and the seeds,
    as docs/serving.md defines each field."""
    facts = [row for row in _warehouse_rows(root, EVENT_FACTS) if start <= row[1] <= end]
    in_period = {row[0] for row in facts}
    sessions = len(facts)

    def ratio(numerator, denominator):
        return numerator / denominator if denominator else None

    user_messages = sum(row[4] for row in facts)
    responses = [row[8] for row in facts if row[8] is not None]
    ratings = [int(rating.strip()) for conversation_id, rating in _warehouse_rows(
        root, "select conversation_id, rating from staging.stg_events "
              "where is_known_type and event_type = 'feedback_received' and trim(rating) in ('1', '2', '3', '4', '5')")
        if conversation_id in in_period]
    escalation = ratio(sum(row[5] for row in facts), sessions)
    metrics = {
        "total_sessions": sessions,
        "avg_session_duration_seconds": ratio(sum((row[3] - row[2]).total_seconds() for row in facts), sessions),
        "avg_messages_per_session": ratio(user_messages, sessions),
        "escalation_rate": escalation,
        "resolution_rate": None if escalation is None else 1 - escalation,
        "fallback_rate": ratio(sum(row[6] for row in facts), user_messages),
        "conversion_rate": ratio(sum(row[7] for row in facts), sessions),
        "avg_first_response_ms": ratio(sum(responses), len(responses)),
        "avg_satisfaction_score": ratio(sum(ratings), len(ratings)),
    }
    topics: dict[str, list] = {}
    for conversation_id, topic in _warehouse_rows(
            root, "select conversation_id, coalesce(topic, 'unknown') from staging.stg_events "
                  "where is_known_type and event_type = 'fallback_triggered'"):
        if conversation_id in in_period:
            events, conversations = topics.setdefault(topic, [0, set()])
            topics[topic][0] = events + 1
            conversations.add(conversation_id)
    top = sorted(((topic, events, len(ids)) for topic, (events, ids) in topics.items()),
                 key=lambda item: (-item[1], item[0]))[:10]
    conversions = _warehouse_rows(
        root, "select conversation_id, event_at from staging.stg_events where is_known_type and event_type = 'conversion'")
    exposures = _warehouse_rows(
        root, "select test_name, conversation_id, variant, first_exposed_at from marts.ab_test_exposures "
              "where variant_count = 1")
    tests = []
    for test_name, start_date, end_date in _warehouse_rows(
            root, "select test_name, min(start_date), max(end_date) from seeds.experiments group by 1 order by 1"):
        if (start_date is not None and start_date > end) or (end_date is not None and end_date < start):
            continue
        variants = []
        for variant, is_control in _warehouse_rows(
                root, "select variant, is_control from seeds.experiments where test_name = ? order by variant_order",
                [test_name]):
            exposed = [(cid, at) for name, cid, value, at in exposures
                       if name == test_name and value == variant and cid in in_period]
            converted = sum(any(cid == other and when >= at for other, when in conversions) for cid, at in exposed)
            variants.append({"variant": variant, "is_control": is_control, "sessions": len(exposed),
                             "conversions": converted, "conversion_rate": ratio(converted, len(exposed))})
        tests.append({"test_name": test_name, "start_date": start_date, "end_date": end_date, "variants": variants})
    return {"metrics": metrics, "funnel": _expected_funnel_steps(root, "support", in_period),
            "top_fallback_topics": [{"topic": topic, "count": events, "conversations": conversations}
                                    for topic, events, conversations in top],
            "ab_tests": tests, "period": {"start": str(start), "end": str(end)}}


def _expected_funnel_steps(root: Path, funnel: str, conversations: set[str]) -> list[dict]:
    """The document's funnel from fct_conversation_stages of the warehouse: in the funnel's declared
    reading, each stage's count and the percent of the previous stage's conversations that did not reach
    it (any order) or that it lost (in order, each stage nested in the one before)."""
    stages = _warehouse_rows(root, "select stage, counting from marts.funnel_summary where funnel_name = ? "
                                   "order by stage_order", [funnel])
    reached: dict[str, set] = {stage: set() for stage, _ in stages}
    in_order: dict[str, set] = {stage: set() for stage, _ in stages}
    for conversation_id, stage, ordered in _warehouse_rows(
            root, "select conversation_id, stage, is_reached_in_order from marts.fct_conversation_stages "
                  "where funnel_name = ?", [funnel]):
        if conversation_id in conversations:
            reached[stage].add(conversation_id)
            if ordered:
                in_order[stage].add(conversation_id)
    counting = stages[0][1]
    steps, previous = [], None
    for stage, _ in stages:
        counted = in_order[stage] if counting == "in_order" else reached[stage]
        if previous is None:
            rate = 0.0
        else:
            went_on = len(counted) if counting == "in_order" else len(previous & counted)
            rate = round((len(previous) - went_on) / len(previous) * 100, 1) if previous else None
        steps.append({"name": stage, "sessionCount": len(counted), "dropoffRate": rate})
        previous = counted
    return steps


def _assert_same(shown, expected, path="") -> None:
    """Equal, doubles to 12 significant digits."""
    if isinstance(expected, dict):
        assert isinstance(shown, dict) and shown.keys() == expected.keys(), (path, shown)
        for key in expected:
            _assert_same(shown[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(shown, list) and len(shown) == len(expected), (path, shown, expected)
        for index, (got, want) in enumerate(zip(shown, expected, strict=True)):
            _assert_same(got, want, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert shown == pytest.approx(expected, rel=1e-12), path
    else:
        assert shown == (expected.isoformat() if hasattr(expected, "isoformat") else expected), path
        assert type(shown) is not float or isinstance(expected, float), path  # counts are integers


def test_analytics_dashboard_equals_the_events_for_a_period_and_the_default(client, published):
    """Every field of /api/analytics/dashboard against a direct reading of the run's staged events: a
    period inside the data, the default (the last 28 complete days) and a period without conversations."""
    days = [row[0] for row in _warehouse_rows(
        published, "select distinct conversation_date from marts.fct_conversations order by 1")]
    newest = _warehouse_rows(published, "select cast(max(last_event_at) as date) from marts.fct_conversations")[0][0]
    latest_complete = max(day for day in days if day < newest)
    for params, (start, end) in (
        ({"start": str(days[1]), "end": str(days[-2])}, (days[1], days[-2])),
        ({}, (latest_complete - dt.timedelta(days=27), latest_complete)),
    ):
        answer = client.get("/api/analytics/dashboard", params=params)
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        assert list(payload) == ["metrics", "funnel", "top_fallback_topics", "ab_tests", "period"]
        assert list(payload["metrics"]) == list(chat_analytics.METRICS)
        expected = _expected_dashboard(published, start, end)
        _assert_same(payload, expected)
        assert expected["metrics"]["total_sessions"] > 100 and expected["top_fallback_topics"]
        assert expected["metrics"]["avg_satisfaction_score"] is not None
        assert all(variant["sessions"] for test in expected["ab_tests"] for variant in test["variants"])
        assert answer.headers[SNAPSHOT_HEADER] == client.get("/api/health").json()["snapshot"]["version"]
    empty = client.get("/api/analytics/dashboard", params={"start": "2000-01-01", "end": "2000-01-31"}).json()
    _assert_same(empty, _expected_dashboard(published, dt.date(2000, 1, 1), dt.date(2000, 1, 31)))
    assert empty["metrics"]["total_sessions"] == 0 and empty["metrics"]["resolution_rate"] is None
    assert [step["dropoffRate"] for step in empty["funnel"]][:2] == [0.0, None]


def test_analytics_funnel_equals_the_stages_for_every_funnel(client, published):
    """/api/analytics/funnel: the support funnel by default, funnel= another, as the document shapes it."""
    days = [row[0] for row in _warehouse_rows(
        published, "select distinct conversation_date from marts.fct_conversations order by 1")]
    start, end = days[1], days[-1]
    in_period = {row[0] for row in _warehouse_rows(
        published, "select conversation_id from marts.fct_conversations where conversation_date between ? and ?",
        [start, end])}
    for funnel in ("support", "sales", "engagement"):
        params = {"start": str(start), "end": str(end), **({} if funnel == "support" else {"funnel": funnel})}
        answer = client.get("/api/analytics/funnel", params=params)
        assert answer.status_code == 200, answer.text
        steps = answer.json()
        _assert_same(steps, _expected_funnel_steps(published, funnel, in_period))
        assert all(list(step) == ["name", "sessionCount", "dropoffRate"] for step in steps)
        assert any(step["dropoffRate"] for step in steps), "no stage loses anyone: the test proves little"
    # the dashboard's funnel is this route's answer for the support funnel
    dashboard = client.get("/api/analytics/dashboard", params={"start": str(start), "end": str(end)}).json()
    assert dashboard["funnel"] == client.get("/api/analytics/funnel", params={"start": str(start), "end": str(end)}).json()


def test_abandon_turns_and_timing_routes_equal_fct_conversations(client, published):
    """/api/abandon-turns and /api/timing over a period and filters against fct_conversations."""
    days = [row[0] for row in _warehouse_rows(
        published, "select distinct conversation_date from marts.fct_conversations order by 1")]
    start, end = days[1], days[-2]
    where = ("conversation_date between ? and ? and coalesce(channel, 'unknown') = 'web' "
             "and coalesce(environment, '') != 'development'")
    turns = _warehouse_rows(
        published, f"select abandoned_at_turn, count(*) from marts.fct_conversations "
                   f"where was_abandoned and abandoned_at_turn is not null and {where} group by 1 order by 2 desc, 1",
        [start, end])
    abandoned = sum(count for _, count in turns)
    params = {"start": str(start), "end": str(end), "channel": "web", "exclude_development": "true", "limit": "3"}
    payload = client.get("/api/abandon-turns", params=params).json()
    assert payload["abandoned"] == abandoned and len(turns) > 3
    assert [(row["turn"], row["conversations"]) for row in payload["turns"]] == turns[:3]
    assert [row["share"] for row in payload["turns"]] == pytest.approx([count / abandoned for _, count in turns[:3]])
    whole = client.get("/api/abandon-turns", params={"period": "all", "limit": "1000"}).json()
    assert {row["turn"]: row["conversations"] for row in whole["turns"]} == dict(_snapshot_rows(
        published, "select turn, conversations from marts.abandon_turns"))

    expected = {(weekday, hour): counts for weekday, hour, *counts in _warehouse_rows(
        published,
        f"""
        select isodow(conversation_date), hour(first_event_at), count(*),
               count(*) filter (where initialized), count(*) filter (where initialized and engaged),
               count(*) filter (where started), count(*) filter (where started and engaged),
               count(*) filter (where started and was_completed)
        from marts.fct_conversations where {where} group by 1, 2
        """, [start, end])}
    cells = client.get("/api/timing", params={k: v for k, v in params.items() if k != "limit"}).json()["cells"]
    assert {(cell["weekday"], cell["hour_of_day"]): [
        cell["conversations"], cell["initialized_conversations"], cell["interacted_conversations"],
        cell["started_conversations"], cell["engaged_conversations"], cell["completed_conversations"]]
        for cell in cells} == expected
    for cell in cells:
        _, initialized, interacted, started, engaged, completed = expected[(cell["weekday"], cell["hour_of_day"])]
        assert cell["interaction_rate"] == (pytest.approx(interacted / initialized) if initialized else None)
        assert cell["engagement_rate"] == (pytest.approx(engaged / started) if started else None)
        assert cell["completion_rate"] == (pytest.approx(completed / started) if started else None)
        assert cell["weekday_name"] == dt.date(2024, 1, cell["weekday"]).strftime("%A")  # 2024-01-01: a Monday
    whole = client.get("/api/timing", params={"period": "all"}).json()["cells"]
    patterns = {(weekday, hour): rate for weekday, hour, rate in _snapshot_rows(
        published, "select weekday, hour_of_day, completion_rate from marts.timing_patterns")}
    assert {(cell["weekday"], cell["hour_of_day"]): cell["completion_rate"] for cell in whole} == pytest.approx(patterns)


def test_the_document_routes_refuse_what_they_cannot_count(client):
    """Filters are refused, not ignored; the same tokens, Host checks and OpenAPI as every route."""
    from starlette.testclient import TestClient

    for route in ("/api/analytics/dashboard", "/api/analytics/funnel"):
        refused = client.get(route, params={"channel": "web"})
        assert refused.status_code == 400 and "start and end" in refused.json()["error"]
        assert client.get(route, params={"start": "2026-02-30"}).status_code == 400
        assert client.get(route, params={"start": "2026-03-05", "end": "2026-03-01"}).status_code == 400
        assert TestClient(client.app, base_url="http://127.0.0.1").get(route).status_code == 401
        assert client.get(route, headers={"Host": "evil.example"}).status_code == 400
        assert client.get(route, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get("/api/analytics/funnel", params={"funnel": "nope"}).status_code == 404
    for route in ("/api/abandon-turns", "/api/timing"):
        assert client.get(route, params={"variant": "greeting_tone:casual"}).status_code == 400
    for limit in ("0", "x", "1001"):
        assert client.get("/api/abandon-turns", params={"limit": limit}).status_code == 400
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/analytics/dashboard", "/api/analytics/funnel", "/api/abandon-turns", "/api/timing"} <= set(paths)
    schema = paths["/api/analytics/dashboard"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert list(schema["properties"]["metrics"]["properties"]) == list(chat_analytics.METRICS)
    assert {p["name"] for p in paths["/api/analytics/funnel"]["get"]["parameters"]} == {"start", "end", "funnel"}


# --------------------------------------------------------------------------- the CLI's JSON


def test_every_read_command_prints_json_from_the_snapshot(published):
    funnel = _cli(published, "funnel", "--json")
    assert funnel.returncode == 0, funnel.stderr
    payload = json.loads(funnel.stdout)
    assert payload["source"]["kind"] == "snapshot"
    for view in payload["funnels"]:
        for stage in view["stages"]:
            assert isinstance(stage["count"], int) and stage["drop_off"] >= 0
            assert stage["from_previous"] is None or 0 <= stage["from_previous"] <= 1
    experiments = _read(published, "experiments", "--json")
    assert experiments.returncode == 0, experiments.stderr
    assert all(0 <= row["conversion_rate"] <= 1 for test in json.loads(experiments.stdout) for row in test["results"]
               if row["conversion_rate"] is not None)
    patterns = _read(published, "patterns", "--json", "--steps", "3")
    assert patterns.returncode == 0, patterns.stderr
    assert len(json.loads(patterns.stdout)["divergence"]) <= 3
    export = _read(published, "export", "--table", "metrics_daily", "--out", str(published / "m.csv"), "--json")
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)["rows"] == len((published / "m.csv").read_text().splitlines()) - 1
    for command in ("funnel", "experiments", "patterns", "export", "api", "dashboard"):
        assert _cli(published, command, "--help").returncode == 0


def test_funnel_command_prints_the_top_abandon_turns(published, client):
    """`convo-warehouse funnel` ends with the period's top abandon turns (--abandon-turns N, in --json too):
    the API's numbers, filters applied, the variant reported as not applied."""
    days = [row[0] for row in _warehouse_rows(
        published, "select distinct conversation_date from marts.fct_conversations order by 1")]
    since = str(days[1])
    printed = _read(published, "funnel", "--json", "--abandon-turns", "4", "--since", since, "--channel", "web")
    assert printed.returncode == 0, printed.stderr
    shown = json.loads(printed.stdout)["abandon_turns"]
    api = client.get("/api/abandon-turns", params={"start": since, "channel": "web", "limit": "4"}).json()
    assert shown["turns"] == api["turns"] and shown["abandoned"] == api["abandoned"] and len(shown["turns"]) == 4
    assert shown["variant_ignored"] is False
    text = _read(published, "funnel", "--funnel", "support", "--abandon-turns", "3", "--variant", "greeting_tone:casual")
    assert text.returncode == 0, text.stderr
    section = text.stdout.split("turns at which conversations were abandoned")[1]
    assert "the variant filter does not apply here" in section
    whole = client.get("/api/abandon-turns", params={"period": "all", "limit": "3"}).json()["turns"]
    rows = [line.split() for line in section.splitlines()[3:6]]
    assert [(int(row[0]), int(row[1].replace(",", ""))) for row in rows] == [
        (turn["turn"], turn["conversations"]) for turn in whole]
    hidden = _read(published, "funnel", "--json", "--abandon-turns", "0")
    assert json.loads(hidden.stdout)["abandon_turns"] is None


# --------------------------------------------------------------------------- a real server, and while a run writes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _restore_default_signals() -> None:
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def test_reading_a_warehouse_a_writer_holds_says_why_and_where_to_read(published, tmp_path):
    """--warehouse reads that file; while a writer has it open, the command explains and points at the snapshot."""
    import shutil

    copy = tmp_path / "held.duckdb"
    shutil.copy2(published / "warehouse.duckdb", copy)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
                               "time.sleep(120)", str(copy)],
        stdout=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_restore_default_signals,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        busy = _read(published, "funnel", "--warehouse", str(copy))
        assert busy.returncode != 0 and "warehouse is busy" in busy.stderr and "snapshot" in busy.stderr
    finally:
        _stop(holder)
    read = _read(published, "funnel", "--warehouse", str(copy), "--json")
    assert read.returncode == 0 and json.loads(read.stdout)["source"] == {
        "kind": "warehouse", "name": str(copy), "data_up_to": None}


def test_the_api_refuses_to_listen_beyond_loopback_without_tokens(published):
    refused = _cli(published, "api", "--host", "0.0.0.0", "--port", str(_free_port()))
    assert refused.returncode != 0 and "CONVO_API_TOKENS" in refused.stderr


def _digest(folder: Path) -> dict[str, str]:
    digest = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            digest[str(path.relative_to(folder))] = "-> " + str(path.readlink())
        elif path.is_file():
            digest[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def test_dbt_docs_generate_lists_the_exposures(published, tmp_path):
    """`dbt docs generate` on the published warehouse: the exposures in the manifest, the marts
    in the catalog, the site's page. dbt runs in this process, on a copy of the warehouse (dbt
    keeps the file it opened open in this process, and the next tests' runs write the warehouse)
    and into a target of its own (the pipeline runs' target keeps its parse). ``--no-compile``:
    compiling every node is what every build of the suite does already."""
    import shutil

    from support.warehouse import Warehouse

    docs = Warehouse(tmp_path / "docs", tmp_path / "target")
    shutil.copy2(published / "warehouse.duckdb", docs.path)
    docs.dbt("docs", "generate", "--no-compile")
    manifest = json.loads((docs.target_dir / "manifest.json").read_text())
    exposures = {exposure["name"]: exposure for exposure in manifest["exposures"].values()}
    assert exposures["convo_dashboard"]["type"] == "dashboard"
    assert "model.convo_warehouse.fct_messages" in exposures["convo_dashboard"]["depends_on"]["nodes"]
    assert exposures["bi_metrics_daily"]["depends_on"]["nodes"] == ["model.convo_warehouse.metrics_daily"]
    catalog = json.loads((docs.target_dir / "catalog.json").read_text())
    assert "model.convo_warehouse.metrics_daily" in catalog["nodes"]
    # read from the warehouse: the table's columns as built
    columns = catalog["nodes"]["model.convo_warehouse.metrics_daily"]["columns"]
    assert {"metric_date", "metric_name", "value"} <= set(columns)
    assert (docs.target_dir / "index.html").exists()


def test_failed_run_leaves_the_snapshot_untouched(published):
    """New files arrive, but the stage rules were edited into an invalid file:
    staging builds, the classifier step fails, the run exits non-zero naming the
    file, and the published snapshot stays byte for byte what it was."""
    from convo_warehouse.lib.generate import generate_events

    serving_dir = published / "serving"
    before = _digest(serving_dir)
    generate_events(published / "landing" / "after-bad-rules", conversations=120, days=3, seed=23,
                    end_date=END_DATE, progress=False)
    rules = published / "broken_stage_rules.yml"
    rules.write_text("stages:\n  not_a_stage:\n    signals: []\n")
    failed = _run(published, CONVO_STAGE_RULES=str(rules))
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert str(rules) in output and "unknown stages" in output
    assert _digest(serving_dir) == before


def test_reads_work_while_a_run_holds_the_warehouse(published, tmp_path):
    """While a run on new data holds the warehouse, every read command and the API answer from
    the snapshot, and a reader holding the snapshot open never waits; the run publishes a second
    version (what did not change linked, not written again), a run without new files none."""
    from convo_warehouse.lib.generate import generate_events

    serving_dir = published / "serving"
    first = serving.current_snapshot(serving_dir)
    assert first.manifest["tests"]["status"] in ("passed", "passed_with_warnings")
    # The reader queries a view over the version's day-partitioned Parquet files.
    assert first.tables["marts.metrics_daily"]["storage"] == "parquet"
    assert first.tables["marts.metrics_daily"]["partition_by"] == "metric_date"
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(serving_dir / "current" / "warehouse.duckdb"), str(stop), str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    port = _free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "convo_warehouse.cli", "api", "--port", str(port)],
        cwd=REPO_ROOT, env=_env(published, CONVO_API_TOKENS=TOKEN), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=_restore_default_signals,
    )
    base = f"http://127.0.0.1:{port}/api"
    run = None
    try:
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
        deadline = time.monotonic() + 60
        while True:
            try:
                status, health = _get(f"{base}/health")
                break
            except OSError:
                assert time.monotonic() < deadline and api.poll() is None, "the API did not start"
                time.sleep(0.5)
        assert status == 200
        assert health["snapshot"]["version"] == first.version

        # new data, so the run has real work to do
        generate_events(
            published / "landing" / "second", conversations=1500, days=3, seed=29, end_date=END_DATE, progress=False
        )
        warehouse = published / "warehouse.duckdb"
        run = subprocess.Popen(
            [sys.executable, "-m", "convo_warehouse.cli", "run", "--quiet"], cwd=REPO_ROOT, env=_env(published),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=_restore_default_signals,
        )
        deadline = time.monotonic() + 120
        while not any(holder.pid == run.pid for holder in lock_holders(warehouse)):
            assert run.poll() is None, run.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the run never took the warehouse"
            time.sleep(0.2)

        # while it holds the warehouse: every read command and the API answer from the snapshot
        answers = {
            "funnel": _read(published, "funnel", "--json"),
            "experiments": _read(published, "experiments", "--json"),
            "patterns": _read(published, "patterns", "--json"),
            "export": _read(published, "export", "--table", "funnel_summary", "--out", str(published / "f.csv")),
        }
        status, metric = _get(f"{base}/metrics/completion_rate?period=all", TOKEN)
        still_running = run.poll() is None and any(holder.pid == run.pid for holder in lock_holders(warehouse))
        for name, answer in answers.items():
            assert answer.returncode == 0, (name, answer.stderr[-2000:])
        assert status == 200 and metric["totals"][0]["value"] is not None
        assert still_running, "the run ended before the reads: the test proved nothing (make its data larger)"

        output, _ = run.communicate(timeout=RUN_TIMEOUT_SECONDS)
        assert run.returncode == 0, output[-3000:]
        # the API follows the new snapshot without a restart
        status, health = _get(f"{base}/health")
        assert status == 200 and health["snapshot"]["version"] != first.version
        without_new_files = _run(published)
        assert without_new_files.returncode == 0, without_new_files.stdout[-3000:] + without_new_files.stderr[-3000:]
    finally:
        stop.touch()
        if run is not None and run.poll() is None:
            _stop(run)
        _stop(api)
        try:
            reader.wait(timeout=120)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait(timeout=10)
    assert reader.returncode == 0, reader.stderr.read()

    # The run with new files published a second version; the run without, nothing.
    versions = serving.list_versions(serving_dir)
    assert len(versions) == 2 and versions[0] == first.version
    second = serving.current_snapshot(serving_dir)
    assert second.version == versions[1]
    assert second.tables["marts.fct_conversations"]["rows"] > first.tables["marts.fct_conversations"]["rows"]
    # The publish learnt what changed from audit.partitions_rewritten, which every complete run
    # writes, instead of hashing every table; what did not change is linked, not written again.
    conversations = second.manifest["changes"]["tables"]["marts.fct_conversations"]
    assert conversations["known_from"].startswith("audit.partitions_rewritten after"), conversations
    assert second.manifest["changes"]["files"]["linked"] > 0
    # Every file of both versions (written, linked, the DuckDB file) has CONVO_FILE_MODE's mode.
    modes = {oct(path.stat().st_mode & 0o777) for path in serving_dir.rglob("*") if path.is_file()}  # the store too
    assert modes == {oct(file_modes.file_mode(_env(published)))}

    results = json.loads(out.read_text())
    held, fresh = results["held"], results["fresh"]
    assert len(held) >= 20 and len(fresh) >= 20
    failures = [result for result in held + fresh if not result["ok"]]
    assert failures == []
    slowest = max(result["seconds"] for result in held + fresh)
    assert slowest < MAX_QUERY_SECONDS, f"a query took {slowest:.2f} s"
    # The held connection kept its consistent old view the whole time (a sum of doubles read from
    # several Parquet files in parallel may differ in its last bits from one query to the next)...
    first_rows = first.tables["marts.metrics_daily"]["rows"]
    assert {(result["rows"], round(result["sum"], 6)) for result in held} == {(held[0]["rows"], round(held[0]["sum"], 6))}
    assert held[0]["rows"] == first_rows
    # ...while reconnecting through `current` moved from the first version to the second.
    assert fresh[0]["rows"] == first_rows
    assert fresh[-1]["rows"] == second.tables["marts.metrics_daily"]["rows"] != first_rows
