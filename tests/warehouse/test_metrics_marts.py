"""Metrics marts end to end: metrics_daily recomputed independently, alerts on an
incident, incremental runs equal to a full refresh, the SQL normal CDF.

The warehouse is built once per module from generated data (with a
``fallback_spike`` incident) by the real loader and dbt. The reference
implementation below reads only the contract (../shared/contract/marts.md) and
fct_conversations / stg_events / ab_test_exposures: it shares no code with the
dbt models.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from support.warehouse import Warehouse, open_warehouse

END_DATE = "2024-03-14"
DAYS = 14
CONVERSATIONS = 1500
SEED = 11
METRICS_SELECT = (
    "+metric_alerts +segment_comparison +dim_metrics alert_rules fct_conversations ab_test_exposures"
    " +fct_conversation_quality +fct_conversation_stages model_prices"
)
SALES_STAGES = ["started", "responded", "qualified", "booked", "attended", "converted"]
KEY = ["metric_date", "metric_name", "segment_type", "segment_value"]
HOURLY_KEY = ["metric_hour", "metric_name", "segment_type", "segment_value"]
ATTRIBUTE_SEGMENTS = ["channel", "agent_id", "device", "source", "language", "environment"]


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


def frame(warehouse: Warehouse, sql: str) -> pd.DataFrame:
    import duckdb

    con = open_warehouse(warehouse.path)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


# ------------------------------------------------------------- reference implementation


def reference_metrics(
    conversations: pd.DataFrame, sentiments: pd.DataFrame, exposures: pd.DataFrame, sales: pd.DataFrame,
    grain: str,
) -> pd.DataFrame:
    """The contract's metrics in long format, computed with pandas.

    ``grain`` is ``metric_date`` (conversation_date) or ``metric_hour`` (UTC hour
    of first_event_at).
    """
    c = conversations.copy()
    c["metric_date"] = pd.to_datetime(c["conversation_date"]).dt.date
    c["metric_hour"] = pd.to_datetime(c["first_event_at"]).dt.floor("h")
    per_conv = sentiments.groupby("conversation_id")["sentiment"].agg(["sum", "count"])
    c["sentiment_sum"] = c["conversation_id"].map(per_conv["sum"]).fillna(0.0)
    c["sentiment_count"] = c["conversation_id"].map(per_conv["count"]).fillna(0).astype(int)
    # v1.2: the sales stages a conversation reached in order (is_reached_in_order of
    # fct_conversation_stages; the in-order rule itself is checked by test_reference_e2e)
    for stage in SALES_STAGES:
        reached = set(sales[(sales["stage"] == stage) & sales["is_reached_in_order"]]["conversation_id"])
        c[f"sales_{stage}"] = c["conversation_id"].isin(reached)

    segments = [c[["conversation_id"]].assign(segment_type="all", segment_value="all")]
    for attribute in ATTRIBUTE_SEGMENTS:
        segments.append(
            c[["conversation_id"]].assign(
                segment_type=attribute,
                segment_value=c[attribute].astype(object).where(c[attribute].notna(), "unknown"),
            )
        )
    clean = exposures[~(exposures["variant_count"] > 1)]
    segments.append(
        pd.DataFrame({
            "conversation_id": clean["conversation_id"],
            "segment_type": "experiment:" + clean["test_name"],
            "segment_value": clean["variant"].where(clean["variant"].notna(), "unknown"),
        })
    )
    seg = pd.concat(segments, ignore_index=True).merge(c, on="conversation_id", how="inner")

    def b(name: str) -> pd.Series:
        return seg[name].fillna(False).astype(bool)

    started, initialized, engaged = b("started"), b("initialized"), b("engaged")
    fr = seg["first_response_ms"].astype(float)
    fb = seg["feedback_score"].astype(float)
    one = pd.Series(1.0, index=seg.index)
    # name -> (numerator, denominator or None for counts), per the contract table
    definitions = {
        "conversations": (one, None),
        "started_conversations": (started.astype(float), None),
        "interaction_rate": ((initialized & engaged).astype(float), initialized.astype(float)),
        "completion_rate": (b("was_completed").astype(float), started.astype(float)),
        "abandonment_rate": (b("was_abandoned").astype(float), started.astype(float)),
        "handoff_rate": (b("had_handoff").astype(float), started.astype(float)),
        "resolution_rate": ((b("was_completed") & ~b("had_handoff")).astype(float), started.astype(float)),
        "conversion_rate": (b("converted").astype(float), started.astype(float)),
        "fallback_rate": (seg["fallback_count"].astype(float), seg["user_turns"].astype(float)),
        "avg_user_turns": (seg["user_turns"].astype(float), started.astype(float)),
        "avg_duration_seconds": (seg["duration_seconds"].astype(float).fillna(0.0), started.astype(float)),
        "avg_first_response_ms": (fr.fillna(0.0), fr.notna().astype(float)),
        "avg_satisfaction_score": (seg["satisfaction_score"].astype(float).fillna(0.0), started.astype(float)),
        "feedback_rate": ((started & fb.notna()).astype(float), started.astype(float)),
        "positive_feedback_rate": ((fb >= 0.5).astype(float), fb.notna().astype(float)),
        "rephrase_rate": ((started & (seg["rephrase_count"] > 0)).astype(float), started.astype(float)),
        # extras used by the alerts
        "response_rate": ((engaged & fr.notna()).astype(float), engaged.astype(float)),
        "avg_sentiment": (seg["sentiment_sum"].astype(float), seg["sentiment_count"].astype(float)),
        # not in the contract: the mean quality score of the conversations that have one (fct_conversation_quality)
        "quality_score": (
            seg["quality_score"].astype(float).fillna(0.0), seg["quality_score"].notna().astype(float)
        ),
        # v1.2: the sales step rates, each in-order stage over the one before
        "sales_response_rate": ((started & b("sales_responded")).astype(float), started.astype(float)),
        "qualification_rate": (b("sales_qualified").astype(float), b("sales_responded").astype(float)),
        "booking_rate": (b("sales_booked").astype(float), b("sales_qualified").astype(float)),
        "show_rate": (b("sales_attended").astype(float), b("sales_booked").astype(float)),
        "sales_conversion_rate": (b("sales_converted").astype(float), b("sales_attended").astype(float)),
        # not in the contract: mean of sentiment_end - sentiment_start where both exist
        "sentiment_change": (
            (seg["sentiment_end"].astype(float) - seg["sentiment_start"].astype(float)).fillna(0.0),
            (seg["sentiment_end"].notna() & seg["sentiment_start"].notna()).astype(float),
        ),
        # not in the contract: semantic rephrases where every user message is embedded, and the
        # frustration flag (>= 3 rephrases by embeddings where known, else by word overlap, then
        # abandoned or handed off)
        "semantic_rephrase_rate": (
            (started & (seg["semantic_rephrase_count"].astype(float) > 0)).astype(float),
            (started & seg["semantic_rephrase_count"].notna()).astype(float),
        ),
        "frustration_rate": (
            (started & (seg["semantic_rephrase_count"].astype(float).fillna(seg["rephrase_count"].astype(float)) >= 3)
             & (b("was_abandoned") | b("had_handoff"))).astype(float),
            started.astype(float),
        ),
        # not in the contract: the model calls' cost of started conversations whose every agent
        # message is priced, and the conversations with an unpriced one
        "cost_per_conversation": (
            (seg["cost_usd"].astype(float).where(started & ~b("has_unpriced"), 0.0)).fillna(0.0),
            (started & ~b("has_unpriced")).astype(float),
        ),
        "unpriced_conversations": (b("has_unpriced").astype(float), None),
    }
    keys = [grain, "segment_type", "segment_value"]
    parts = []
    for name, (numerator, denominator) in definitions.items():
        data = seg[keys].assign(numerator=numerator.values)
        if denominator is not None:
            data = data.assign(denominator=denominator.values)
        summed = data.groupby(keys, as_index=False).sum()
        if denominator is None:
            summed["denominator"] = np.nan
            summed["value"] = summed["numerator"]
        else:
            summed = summed[summed["denominator"] > 0].copy()
            summed["value"] = summed["numerator"] / summed["denominator"]
        parts.append(summed.assign(metric_name=name))
    percentiles = {
        "first_response_ms_p50": ("first_response_ms", 0.5),
        "first_response_ms_p95": ("first_response_ms", 0.95),
        "duration_seconds_p50": ("duration_seconds", 0.5),
    }
    for name, (column, q) in percentiles.items():
        values = seg[keys + [column]].dropna(subset=[column])
        quantiles = (
            values.groupby(keys)[column]
            .apply(lambda v: float(np.quantile(v.astype(float).to_numpy(), q, method="linear")))
            .reset_index(name="value")
        )
        parts.append(quantiles.assign(metric_name=name, numerator=np.nan, denominator=np.nan))
    result = pd.concat(parts, ignore_index=True)
    return result[[grain, "metric_name", "segment_type", "segment_value", "numerator", "denominator", "value"]]


def reference_costs(warehouse: Warehouse) -> pd.DataFrame:
    """Per conversation with agent messages: the cost of its messages at the seed's price holding at
    each message's time (model matched ignoring case and spaces; a missing token count adds nothing)
    and whether any message had no price. Read from the staged events and the seed itself."""
    messages = frame(warehouse, "select conversation_id, model, event_at, input_tokens, output_tokens "
                                "from staging.stg_events where event_type = 'agent_message' and is_known_type")
    prices = frame(warehouse, "select model, input_price_per_million, output_price_per_million, valid_from "
                              "from seeds.model_prices")
    periods: dict[str, list] = {}
    for row in prices.itertuples():
        periods.setdefault(str(row.model).strip().lower(), []).append(
            (pd.Timestamp(row.valid_from), row.input_price_per_million, row.output_price_per_million))
    rows = []
    for message in messages.itertuples():
        held = [period for period in periods.get(str(message.model or "unknown").strip().lower(), [])
                if period[0] <= pd.Timestamp(message.event_at)]
        if not held:
            rows.append((message.conversation_id, 0.0, 1))
            continue
        _, price_in, price_out = max(held)
        tokens_in = 0 if pd.isna(message.input_tokens) else message.input_tokens
        tokens_out = 0 if pd.isna(message.output_tokens) else message.output_tokens
        rows.append((message.conversation_id, (tokens_in * price_in + tokens_out * price_out) / 1e6, 0))
    costs = pd.DataFrame(rows, columns=["conversation_id", "cost_usd", "unpriced"])
    return costs.groupby("conversation_id", as_index=False).sum()


def reference_inputs(warehouse: Warehouse) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    # the quality score of every started conversation (fct_conversation_quality publishes those with a
    # scored user message: contract v1.3), and the sentiment start / end the mart publishes
    conversations = frame(
        warehouse,
        "select fct_conversations.*, int_conversation_quality_scored.quality_score,"
        " fct_conversation_quality.sentiment_start, fct_conversation_quality.sentiment_end"
        " from marts.fct_conversations "
        "left join intermediate.int_conversation_quality_scored "
        "on fct_conversations.conversation_id = int_conversation_quality_scored.conversation_id "
        "left join marts.fct_conversation_quality "
        "on fct_conversations.conversation_id = fct_conversation_quality.conversation_id",
    )
    # the event's sentiment when in -1..1, else the lexicon score the classification asset stored
    sentiments = frame(
        warehouse,
        "select * from ("
        " select stg_events.conversation_id, coalesce(case when stg_events.sentiment between -1 and 1"
        " then stg_events.sentiment end, message_sentiment.sentiment) as sentiment"
        " from staging.stg_events left join classification.message_sentiment"
        " on stg_events.event_id = message_sentiment.event_id"
        " where stg_events.is_known_type and stg_events.event_type = 'user_message'"
        ") where sentiment is not null",
    )
    rephrases = frame(warehouse, "select conversation_id, semantic_rephrase_count from marts.fct_conversation_rephrases")
    conversations = conversations.merge(rephrases, on="conversation_id", how="left")
    costs = reference_costs(warehouse)
    conversations = conversations.merge(costs, on="conversation_id", how="left")
    conversations["has_unpriced"] = conversations["unpriced"].fillna(0) > 0
    conversations["cost_usd"] = conversations["cost_usd"].fillna(0.0)  # no agent message: nothing spent
    exposures = frame(
        warehouse, "select test_name, conversation_id, variant, variant_count from marts.ab_test_exposures"
    )
    sales = frame(
        warehouse,
        "select conversation_id, stage, is_reached_in_order from marts.fct_conversation_stages "
        "where funnel_name = 'sales'",
    )
    return conversations, sentiments, exposures, sales


def assert_same_metrics(actual: pd.DataFrame, expected: pd.DataFrame, key: list[str], rel: float = 1e-9) -> None:
    """Same keys, and numerator / denominator / value equal within float-summation noise."""
    merged = actual.merge(expected, on=key, how="outer", suffixes=("_actual", "_expected"), indicator=True)
    only_actual = merged[merged["_merge"] == "left_only"]
    only_expected = merged[merged["_merge"] == "right_only"]
    assert only_actual.empty, f"rows the reference does not have:\n{only_actual[key].head(20)}"
    assert only_expected.empty, f"rows missing from the mart:\n{only_expected[key].head(20)}"
    for column in ("numerator", "denominator", "value"):
        a = merged[f"{column}_actual"].astype(float).to_numpy()
        e = merged[f"{column}_expected"].astype(float).to_numpy()
        both_null = np.isnan(a) & np.isnan(e)
        close = np.isclose(a, e, rtol=rel, atol=1e-9)
        bad = ~(both_null | close)
        assert not bad.any(), (
            f"{int(bad.sum())} rows differ in {column}:\n"
            f"{merged.loc[bad, key + [f'{column}_actual', f'{column}_expected']].head(20)}"
        )


# ------------------------------------------------------------------------------ tests


def test_metrics_daily_matches_independent_recomputation(built: Warehouse) -> None:
    actual = frame(
        built, "select metric_date, metric_name, segment_type, segment_value, numerator, denominator, value "
        "from marts.metrics_daily",
    )
    actual["metric_date"] = pd.to_datetime(actual["metric_date"]).dt.date
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


def test_incremental_runs_equal_a_full_refresh(generated, tmp_path_factory, dbt_target_dir) -> None:
    """Load the generated days in four batches (the late events last), run the
    whole project after each (a complete run: the next one recomputes what
    changed since) and compare the metrics with the independent recomputation
    of that moment, then with --full-refresh on the same warehouse: only the
    scope of each run (scope_days: the days of the conversations with new
    events, and of those the clock moved across a window) keeps the
    incremental tables right. metric_alerts, rebuilt by every run from
    metrics_daily, with rules that fire in every window (week-over-week ones
    included: the late events change days whose week-later windows compare
    with them) equals its full refresh too."""
    source, _ = generated
    warehouse = Warehouse(tmp_path_factory.mktemp("metrics-incremental"), dbt_target_dir)
    day_folders = sorted(p for p in source.iterdir() if p.is_dir() and p.name != "late")
    batches = [day_folders[:7], day_folders[7:10], day_folders[10:], [source / "late"]]
    warehouse.dbt("seed")
    warehouse.query(
        "insert into seeds.alert_rules (rule_name, metric_name, segment_type, segment_value, condition, threshold, "
        "time_window, severity, min_sample) values "
        "('any_volume', 'conversations', 'all', 'all', 'exceeds', 0, '1h', 'low', 1), "
        "('completion_wow_any', 'completion_rate', 'channel', '*', 'drops_by_points_wow', -2, '1d', 'low', 1), "
        "('volume_wow_any', 'conversations', 'all', 'all', 'drops_by_points_wow', -1000000, '4h', 'low', 1)"
    )
    snapshots = []
    for number, batch in enumerate(batches, start=1):
        for folder in batch:
            shutil.copytree(folder, warehouse.landing / folder.name)
        assert warehouse.load().load_id == number
        if number in (2, 3):
            # a marker on the oldest day: a run that recomputed every day would erase it
            oldest = warehouse.scalar("select min(metric_date) from marts.metrics_daily")
            warehouse.query(
                "update marts.metrics_daily set segment_value = 'untouched' "
                "where metric_date = ? and metric_name = 'conversations' and segment_type = 'all'",
                [oldest],
            )
        recorded = warehouse.scalar("select max(recorded_at) from audit.partitions_rewritten") if number > 1 else None
        # a complete run (the reference reads the marts fct_conversations, ab_test_exposures,
        # fct_conversation_quality and fct_conversation_stages)
        warehouse.dbt("run")
        if number in (2, 3):
            # incremental, not a rebuild: the oldest day was left alone
            kept = warehouse.query(
                "update marts.metrics_daily set segment_value = 'all' "
                "where segment_value = 'untouched' returning metric_date"
            )
            assert kept == [(oldest,)], f"batch {number} recomputed every day"
        daily, hourly = metric_tables(warehouse)
        expected_daily = reference_metrics(*reference_inputs(warehouse), grain="metric_date")
        assert_same_metrics(daily, expected_daily, KEY)
        snapshots.append(daily)

    # the late events changed days the day batches had left alone: the test can fail
    newest_before_late = max(snapshots[2]["metric_date"])
    changed = changed_days(snapshots[2], snapshots[3])
    assert any(day < newest_before_late - dt.timedelta(days=3) for day in changed), changed
    # the late run replaced the days of its scope, the changed days among them, not every day
    rewritten_days = {
        row[0] for row in warehouse.query(
            "select partition_date from audit.partitions_rewritten where relation_name = 'marts.metrics_daily' "
            "and recorded_at > ? and not rewrote_all",
            [recorded],
        )
    }
    assert rewritten_days == {row[0] for row in warehouse.query("select event_date from scope.scope_days")}
    assert changed <= rewritten_days < set(snapshots[3]["metric_date"]), (rewritten_days, changed)
    assert not warehouse.query(
        "select 1 from audit.partitions_rewritten where relation_name = 'marts.metrics_daily' "
        "and recorded_at > ? and rewrote_all",
        [recorded],
    )
    alerts = (
        "select rule_name, segment_type, segment_value, window_start, window_date, window_end, observed_value, "
        "baseline_value, sample_size, baseline_sample_size from marts.metric_alerts"
    )
    incremental_alerts = warehouse.query(f"{alerts} order by all")
    wow = [row for row in incremental_alerts if row[0] in ("completion_wow_any", "volume_wow_any")]
    assert {row[0] for row in wow} == {"completion_wow_any", "volume_wow_any"}, "no week-over-week alert fired"
    assert {row[4] for row in wow} & {day + dt.timedelta(days=7) for day in changed}, (
        "no week-over-week window compares with a day the late events changed"
    )

    incremental = metric_tables(warehouse)
    warehouse.dbt("run", "--select", "metrics_daily metrics_hourly metric_alerts", "--full-refresh")
    full = metric_tables(warehouse)
    assert len(incremental[0]) == len(full[0]) and len(incremental[1]) == len(full[1])
    assert_same_metrics(incremental[0], full[0], KEY, rel=1e-12)
    assert_same_metrics(incremental[1], full[1], HOURLY_KEY, rel=1e-12)
    assert warehouse.query(f"{alerts} order by all") == incremental_alerts


def metric_tables(warehouse: Warehouse) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = "metric_name, segment_type, segment_value, numerator, denominator, value"
    daily = frame(warehouse, f"select metric_date, {columns} from marts.metrics_daily")
    daily["metric_date"] = pd.to_datetime(daily["metric_date"]).dt.date
    hourly = frame(warehouse, f"select metric_hour, {columns} from marts.metrics_hourly")
    return daily, hourly


def changed_days(before: pd.DataFrame, after: pd.DataFrame) -> set:
    merged = before.merge(after, on=KEY, how="outer", suffixes=("_b", "_a"), indicator=True)
    different = (merged["_merge"] != "both") | ~np.isclose(
        merged["value_b"].astype(float), merged["value_a"].astype(float), equal_nan=True
    )
    return set(merged.loc[different, "metric_date"])


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
