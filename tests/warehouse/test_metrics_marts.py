"""Metrics marts end to end: metrics_daily recomputed independently, alerts on an
incident, the SQL normal CDF.

The warehouse is built once per module from generated data (with a
``fallback_spike`` incident) by the real loader and dbt. The reference
implementation (``support/metrics_reference.py``) reads only the contract
(../shared/contract/marts.md) and the conversation facts: it shares no code with the
dbt models. Incremental runs are compared with it after every run of the incremental
scenario (tests/warehouse/test_incremental_equals_full_build.py).
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from support.metrics_reference import (
    ATTRIBUTE_SEGMENTS,
    HOURLY_KEY,
    KEY,
    assert_same_metrics,
    metrics_daily,
    reference_inputs,
    reference_metrics,
)
from support.warehouse import Warehouse, frame

END_DATE = "2024-03-14"
DAYS = 14
CONVERSATIONS = 1500
SEED = 11
METRICS_SELECT = (
    "+metric_alerts +segment_comparison +dim_metrics alert_rules fct_conversations ab_test_exposures"
    " +fct_conversation_quality +fct_conversation_stages model_prices"
)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Generated landing files (one folder per day, plus late/) and the summary."""
    from convo_warehouse.lib.generate import generate_events

    out = tmp_path_factory.mktemp("metrics-generated")
    summary = generate_events(
        out, conversations=CONVERSATIONS, days=DAYS, seed=SEED, end_date=END_DATE,
        incident="fallback_spike", progress=False,
    )
    return out, summary


@pytest.fixture(scope="module")
def built(generated, tmp_path_factory, dbt_target_dir) -> Warehouse:
    """All generated files loaded at once and the metrics marts built (with tests)."""
    source, _ = generated
    warehouse = Warehouse(tmp_path_factory.mktemp("metrics-warehouse"), dbt_target_dir)
    shutil.rmtree(warehouse.landing)
    shutil.copytree(source, warehouse.landing)
    warehouse.load()
    warehouse.build(METRICS_SELECT)
    return warehouse


# ------------------------------------------------------------------------------ tests


def test_metrics_daily_matches_independent_recomputation(built: Warehouse) -> None:
    actual = metrics_daily(built)
    expected = reference_metrics(*reference_inputs(built), grain="metric_date")
    assert len(actual) > 1000
    assert_same_metrics(actual, expected, KEY)
    # every contract segment type is present on the generated data
    segment_types = set(actual["segment_type"])
    assert {"all", *ATTRIBUTE_SEGMENTS} <= segment_types
    assert any(s.startswith("experiment:") for s in segment_types)


def test_metrics_hourly_matches_independent_recomputation(built: Warehouse) -> None:
    actual = frame(
        built, "select metric_hour, metric_name, segment_type, segment_value, numerator, denominator, value "
        "from marts.metrics_hourly",
    )
    expected = reference_metrics(*reference_inputs(built), grain="metric_hour")
    actual["metric_hour"] = pd.to_datetime(actual["metric_hour"])
    expected["metric_hour"] = pd.to_datetime(expected["metric_hour"])
    assert_same_metrics(actual, expected, HOURLY_KEY)


def test_the_alert_unit_test_holds_the_shipped_sales_bot_rules() -> None:
    """The unit test metric_alerts_shipped_sales_bot_rules gives metric_alerts the rules of
    seeds/alert_rules.csv (issue 30: the sales-bot definitions); a rule edited in the seed and not
    in the test, or the other way round, fails here."""
    import csv

    import yaml

    from support.warehouse import REPO_ROOT

    with open(REPO_ROOT / "seeds" / "alert_rules.csv", newline="") as handle:
        seed = {row["rule_name"]: row for row in csv.DictReader(handle)}
    tests = yaml.safe_load((REPO_ROOT / "models" / "marts" / "metrics" / "_metrics__unit_tests.yml").read_text())
    test = next(test for test in tests["unit_tests"] if test["name"] == "metric_alerts_shipped_sales_bot_rules")
    given = next(given["rows"] for given in test["given"] if given["input"] == "ref('stg_seeds__alert_rules')")
    assert {row["rule_name"] for row in given} == {"low_sales_response_rate", "high_fallback_rate", "negative_sentiment"}
    for row in given:
        shipped = seed[row["rule_name"]]
        for column, value in row.items():
            expected = float(shipped[column]) if isinstance(value, (int, float)) else shipped[column]
            assert value == expected, (row["rule_name"], column, value, shipped[column])


# Metrics whose inputs this warehouse cannot have, so no day has a denominator: semantic rephrases
# need an embedding model (CONVO_EMBEDDING_MODEL), and the price seed has no price for the generated
# models in early 2024 (each model's prices start at its release), so no started conversation's cost is known.
WITHOUT_ROWS_IN_THIS_DATA = {"semantic_rephrase_rate", "cost_per_conversation"}


def test_every_metric_is_documented(built: Warehouse) -> None:
    names = {row[0] for row in built.query("select distinct metric_name from marts.metrics_daily")}
    documented = {row[0] for row in built.query("select metric_name from marts.dim_metrics")}
    assert names == documented - WITHOUT_ROWS_IN_THIS_DATA
    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    glossary = (
        Path(__file__).resolve().parents[2] / "models" / "marts" / "metrics" / "_metrics__docs.md"
    ).read_text()
    for name in documented:
        assert f"`{name}`" in docs, f"{name} missing from docs/metrics.md"
        assert f"`{name}`" in glossary, f"{name} missing from the dbt glossary"


def test_a_metric_name_outside_the_definitions_fails_its_test(built: Warehouse) -> None:
    """is_defined_metric: metrics_daily's names are those dim_metrics is generated from."""
    select = ["test", "--select", "metrics_daily,test_name:is_defined_metric"]
    built.dbt(*select)
    columns = ", ".join(
        "'not_a_metric'" if name == "metric_name" else name
        for (name,) in built.query(
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'metrics_daily' order by ordinal_position"
        )
    )
    built.query(f"insert into marts.metrics_daily select {columns} from marts.metrics_daily limit 1")
    try:
        result = built.dbt(*select, check=False)
    finally:
        built.query("delete from marts.metrics_daily where metric_name = 'not_a_metric'")
    assert not result.success
    failed = [r.node.name for r in result.result.results if r.status == "fail"]
    assert failed == ["is_defined_metric_metrics_daily_metric_name"]


def test_alerts_fire_on_the_incident_day_only(built: Warehouse, generated) -> None:
    _, summary = generated
    incident_day = dt.date.fromisoformat(summary["incident_day"])
    alerts = frame(built, "select rule_name, window_start, window_end, sample_size, min_sample from marts.metric_alerts")
    assert not alerts.empty, "the fallback spike raised no alert"
    fallback = alerts[alerts["rule_name"] == "high_fallback_rate"]
    assert len(fallback) >= 1
    days = {ts.date() for ts in pd.to_datetime(alerts["window_start"])}
    assert days == {incident_day}, f"alerts outside the incident day {incident_day}: {sorted(days)}"
    assert (alerts["sample_size"] >= alerts["min_sample"]).all()


def test_segment_comparison_matches_scipy(built: Warehouse) -> None:
    """v1.3: every proportion metric x every segment type but all, over the whole history, from
    metrics_daily's summed day rows; z-test, Wilson interval, Benjamini-Hochberg within metric and
    segment type, is_best (highest, lowest where lower is better) among samples >= 30."""
    rows = frame(built, "select * from marts.segment_comparison")
    proportions = dict(built.query("select metric_name, better_direction from marts.dim_metrics where is_proportion"))
    assert proportions["abandonment_rate"] == "lower" and proportions["completion_rate"] == "higher"
    daily = frame(
        built, "select metric_name, segment_type, segment_value, min(metric_date) as first_day, "
        "max(metric_date) as last_day, sum(numerator) as x, sum(denominator) as n from marts.metrics_daily "
        "where segment_type != 'all' group by 1, 2, 3",
    )
    daily = daily[daily["metric_name"].isin(proportions)]
    assert set(zip(rows["metric_name"], rows["segment_type"])) == set(zip(daily["metric_name"], daily["segment_type"]))
    assert {"environment", "channel", "agent_id"} <= set(rows["segment_type"])
    assert any(kind.startswith("experiment:") for kind in rows["segment_type"])
    assert len(rows) == len(daily)
    assert set(rows["period_start"]) == {daily["first_day"].min()} and set(rows["period_end"]) == {daily["last_day"].max()}
    z95 = stats.norm.ppf(0.975)
    expected = {}
    for (metric, segment_type), family in daily.groupby(["metric_name", "segment_type"]):
        x_all, n_all = family["x"].sum(), family["n"].sum()
        tested = {}
        for value, x, n in zip(family["segment_value"], family["x"], family["n"], strict=True):
            x_rest, n_rest = x_all - x, n_all - n
            p = x / n
            pooled = (x + x_rest) / (n + n_rest) if n_rest else None
            z = None
            if n_rest and 0 < pooled < 1:
                z = (p - x_rest / n_rest) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_rest))
                tested[value] = 2 * stats.norm.sf(abs(z))
            centre = (p + z95**2 / (2 * n)) / (1 + z95**2 / n)
            half = z95 / (1 + z95**2 / n) * math.sqrt(p * (1 - p) / n + z95**2 / (4 * n * n))
            expected[(metric, segment_type, value)] = dict(
                x=x, n=n, rate=p, rest_rate=x_rest / n_rest if n_rest else None, z=z, low=centre - half,
                high=centre + half, small=n < 30 or n_rest < 30)
        adjusted = dict(zip(tested, stats.false_discovery_control(list(tested.values())), strict=True)) if tested else {}
        sign = -1 if proportions[metric] == "lower" else 1
        eligible = [sign * x / n for x, n in zip(family["x"], family["n"], strict=True) if n >= 30]
        for value, x, n in zip(family["segment_value"], family["x"], family["n"], strict=True):
            row = expected[(metric, segment_type, value)]
            row["p"] = adjusted.get(value)
            row["best"] = bool(eligible) and n >= 30 and sign * x / n == max(eligible)
    significant = best = 0
    for row in rows.itertuples():
        want = expected[(row.metric_name, row.segment_type, row.segment_value)]
        assert row.sample_size == want["n"] and row.numerator == want["x"]
        assert row.rate == pytest.approx(want["rate"], rel=1e-12)
        assert row.ci_low == pytest.approx(want["low"], abs=1e-6)
        assert row.ci_high == pytest.approx(want["high"], abs=1e-6)
        if want["rest_rate"] is None:
            assert pd.isna(row.rest_rate) and pd.isna(row.difference_from_rest)
        else:
            assert row.difference_from_rest == pytest.approx(want["rate"] - want["rest_rate"], abs=1e-12)
        if want["z"] is None:
            assert pd.isna(row.z_score) and pd.isna(row.p_value) and pd.isna(row.is_significant)
        else:
            assert row.z_score == pytest.approx(want["z"], rel=1e-9)
            assert row.p_value == pytest.approx(want["p"], abs=2e-6)
            if abs(want["p"] - 0.05) > 1e-5:  # the SQL normal CDF is within 1e-7 of scipy's
                assert bool(row.is_significant) == (want["p"] < 0.05)
            significant += bool(row.is_significant)
        assert row.is_best == want["best"], (row.metric_name, row.segment_type, row.segment_value)
        assert row.is_small_sample == want["small"]
        best += row.is_best
    # the generated data makes the checks bite: significant values, and adjusted p-values that differ
    assert significant > 5 and best > 20
    assert (rows["p_value"] > rows["unadjusted_p_value"] + 1e-9).sum() > 20


def test_two_sided_p_value_macro_matches_scipy(built: Warehouse) -> None:
    """The SQL normal CDF (Abramowitz-Stegun 26.2.17) against scipy over a range of z."""
    compiled = built.dbt(
        "compile", "--inline", "select {{ metrics_two_sided_p_value('z') }} as p, z "
        "from (select unnest(range(-800, 801)) / 100.0 as z)",
    )
    sql = compiled.result.results[0].node.compiled_code
    rows = built.query(sql)
    worst = max(abs(p - 2 * stats.norm.sf(abs(z))) for p, z in rows)
    assert len(rows) == 1601
    assert worst < 2e-7


def write_events(path: Path, events: list[dict]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(event) + "\n" for event in events))


def event(event_id: str, conversation_id: str, event_type: str, timestamp: str, **properties) -> dict:
    return {
        "event_id": event_id, "conversation_id": conversation_id, "user_id": f"u-{conversation_id}",
        "event_type": event_type, "timestamp": timestamp, "channel": "web", "properties": properties,
    }


def test_late_event_moving_a_conversation_empties_its_old_day(warehouse: Warehouse) -> None:
    """Conversation x is alone on 2024-01-02; a late event puts its first event on
    2024-01-01. The incremental run (x alone in its scope, both its days) must
    drop 2024-01-02 entirely (delete+insert alone would keep it) and recount
    2024-01-01."""
    write_events(warehouse.landing / "first.jsonl", [
        event("y1", "y", "conversation_started", "2024-01-01T09:00:00Z", agent_id="a1"),
        event("y2", "y", "user_message", "2024-01-01T09:00:05Z", content="hello", sentiment=0.5),
        event("x1", "x", "conversation_started", "2024-01-02T10:00:00Z"),
        event("x2", "x", "user_message", "2024-01-02T10:00:05Z", content="hi"),
    ])
    warehouse.load()
    warehouse.dbt("seed")
    warehouse.dbt("run")  # complete runs: the second recomputes what changed since the first
    days = warehouse.query("select distinct metric_date from marts.metrics_daily order by 1")
    assert [d for (d,) in days] == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]

    write_events(warehouse.landing / "late.jsonl", [
        event("x0", "x", "interaction_initialized", "2024-01-01T23:00:00Z", device="mobile"),
    ])
    warehouse.load()
    warehouse.dbt("run")
    assert warehouse.query("select conversation_id from scope.scope_conversations") == [("x",)]
    assert warehouse.query("select event_date from scope.scope_days order by 1") == [
        (dt.date(2024, 1, 1),), (dt.date(2024, 1, 2),)
    ]
    days = warehouse.query("select distinct metric_date from marts.metrics_daily order by 1")
    assert [d for (d,) in days] == [dt.date(2024, 1, 1)]
    hours = warehouse.query("select distinct metric_hour from marts.metrics_hourly order by 1")
    assert [h for (h,) in hours] == [dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 1, 23)]
    counts = dict(warehouse.query(
        "select segment_type || ':' || segment_value, value from marts.metrics_daily "
        "where metric_name = 'conversations' and segment_type in ('all', 'device')"
    ))
    assert counts == {"all:all": 2, "device:mobile": 1, "device:unknown": 1}


def test_newer_events_elsewhere_make_an_old_day_abandoned(warehouse: Warehouse) -> None:
    """Inferred abandonment depends on the newest event in the warehouse. a (alone
    on 2024-01-01) is silent for 15 minutes at the first run: not abandoned. The
    second load only brings a conversation on 2024-01-03; a's day receives no
    event, yet a is now abandoned (in the second run's scope for crossing the
    abandonment window) and its day must be recomputed."""
    write_events(warehouse.landing / "first.jsonl", [
        event("a1", "a", "conversation_started", "2024-01-01T23:40:00Z"),
        event("a2", "a", "user_message", "2024-01-01T23:50:00Z", content="anyone there?"),
        event("b1", "b", "conversation_started", "2024-01-02T00:05:00Z"),
    ])
    warehouse.load()
    warehouse.dbt("seed")
    warehouse.dbt("run")  # complete runs: the second recomputes what changed since the first
    abandonment = (
        "select numerator from marts.metrics_daily where metric_name = 'abandonment_rate' "
        "and segment_type = 'all' and metric_date = date '2024-01-01'"
    )
    assert warehouse.scalar(abandonment) == 0

    write_events(warehouse.landing / "second.jsonl", [
        event("c1", "c", "conversation_started", "2024-01-03T12:00:00Z"),
    ])
    warehouse.load()
    warehouse.dbt("run")
    assert warehouse.scalar(abandonment) == 1
    assert warehouse.query(
        "select conversation_id, has_new_events, crossed_abandonment_window from scope.scope_conversations "
        "where conversation_id = 'a'"
    ) == [("a", False, True)]
