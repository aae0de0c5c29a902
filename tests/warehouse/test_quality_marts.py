"""Conversation quality end to end: generated events -> loader -> dbt -> classifier (rules,
lexicon sentiment) -> dbt, then fct_conversation_quality and the quality_score metric
checked against a pandas recomputation that reads only fct_conversations, the staged
events, the classifier's tables and the weights seed (it shares no code with the models).

This file's warehouse is the suite's one build of every model of the project as shipped (its
own seeds and vars, no copy), so the dbt unit tests and the whole-table grain tests, which a
run leaves out, run on it too (the last test), and so do the data tests of the shipped seeds,
which every other test's build of the shipped project leaves out (they would check the same
files again: ``Warehouse.seed_tests_left_out``).
"""

from __future__ import annotations

import shutil
from collections import Counter

import duckdb
import numpy as np
import pandas as pd
import pytest

from support.warehouse import REPO_ROOT, Warehouse, frame, open_warehouse

CONVERSATIONS = 700
DAYS = 4
SEED = 23
END_DATE = "2024-05-10"
ATTRIBUTE_SEGMENTS = ["channel", "agent_id", "device", "source", "language", "environment"]
AFTER_CLASSIFIER = "source:classification+"


@pytest.fixture(scope="module")
def built(tmp_path_factory, dbt_target_dir) -> Warehouse:
    from convo_warehouse.lib.classify.runner import classify_warehouse
    from convo_warehouse.lib.generate import generate_events

    source = tmp_path_factory.mktemp("quality-generated")
    generate_events(source, conversations=CONVERSATIONS, days=DAYS, seed=SEED, end_date=END_DATE, progress=False)
    warehouse = Warehouse(tmp_path_factory.mktemp("quality-warehouse"), dbt_target_dir)
    shutil.rmtree(warehouse.landing)
    shutil.copytree(source, warehouse.landing)
    warehouse.load()
    warehouse.dbt("seed")
    warehouse.build(None, "--exclude", "source:classification+")
    con = open_warehouse(warehouse.path)
    try:
        classify_warehouse(con, "rules")
    finally:
        con.close()
    warehouse.build(AFTER_CLASSIFIER)
    return warehouse


# ------------------------------------------------------------- reference implementation


def reference_sentiment(warehouse: Warehouse) -> pd.DataFrame:
    """Per conversation: n scored user messages, mean, start / end (first / last max(1, floor(n/3))),
    trend (end - start, contract v1.3) and direction (the category, from 3 messages on)."""
    messages = frame(
        warehouse,
        "select stg_events.conversation_id, stg_events.event_id, stg_events.event_at, "
        "stg_events.sentiment as event_sentiment, message_sentiment.sentiment as lexicon_sentiment "
        "from staging.stg_events left join classification.message_sentiment "
        "on stg_events.event_id = message_sentiment.event_id "
        "where stg_events.is_known_type and stg_events.event_type = 'user_message'",
    )
    usable = messages["event_sentiment"].between(-1, 1)
    messages["sentiment"] = messages["event_sentiment"].where(usable, messages["lexicon_sentiment"])
    rows = []
    for conversation_id, group in messages.dropna(subset=["sentiment"]).groupby("conversation_id"):
        values = group.sort_values(["event_at", "event_id"])["sentiment"].to_numpy(dtype=float)
        n = len(values)
        k = max(1, n // 3)
        start, end = values[:k].mean(), values[n - k:].mean()
        direction = None
        if n >= 3:
            delta = round(end - start, 6)
            direction = "improving" if delta >= 0.2 else "worsening" if delta <= -0.2 else "stable"
        rows.append((conversation_id, n, values.mean(), start, end, end - start, direction))
    return pd.DataFrame(rows, columns=["conversation_id", "n", "avg", "start", "end", "trend", "direction"])


def reference_quality(warehouse: Warehouse) -> pd.DataFrame:
    """The four components and the weighted score, per started conversation (docs/quality.md)."""
    conversations = frame(warehouse, "select * from marts.fct_conversations where started")
    reached = frame(
        warehouse,
        "select conversation_id, stage from classification.stage_classifications "
        "where funnel_name = 'support' and reached",
    )
    stage_order = {"initiated": 1, "greeted": 2, "problem_identified": 3, "solution_proposed": 4,
                   "solution_accepted": 5, "resolved": 6}
    highest = reached.assign(order=reached["stage"].map(stage_order)).groupby("conversation_id")["order"].max()
    weights = pd.read_csv(REPO_ROOT / "seeds" / "quality_weights.csv").set_index("component")["weight"]
    sentiment = reference_sentiment(warehouse).set_index("conversation_id")

    c = conversations.copy()  # completed_at: the first conversation_completed event
    c["highest"] = c["conversation_id"].map(highest)
    c["classified_resolved"] = c["highest"] == 6
    c["resolution"] = np.select(
        [c["converted"], c["had_handoff"], c["was_completed"] | c["classified_resolved"]], [1.0, 0.5, 1.0], 0.0
    )
    c["goal_completion"] = np.where(
        c["converted"] | c["was_completed"] | c["classified_resolved"], 1.0, c["highest"].fillna(1) / 6
    )
    seconds = (pd.to_datetime(c["completed_at"]) - pd.to_datetime(c["started_at"])).dt.total_seconds()
    c["resolution_seconds"] = seconds.where(c["completed_at"].notna(), c["duration_seconds"])
    c["agent"] = c["agent_id"].fillna("unknown")
    with_turns = c[c["user_turns"] > 0]
    medians = with_turns.groupby(["agent", "conversation_date"])[["user_turns", "resolution_seconds"]].median()
    c = c.join(medians, on=["agent", "conversation_date"], rsuffix="_median")
    turns_part = np.minimum(1.0, c["user_turns_median"] / c["user_turns"].where(c["user_turns"] > 0))
    time_part = np.where(
        c["resolution_seconds"] <= 0, 1.0, np.minimum(1.0, c["resolution_seconds_median"] / c["resolution_seconds"])
    )
    c["efficiency"] = (0.5 * turns_part + 0.5 * time_part).where(c["user_turns"] > 0)
    s = c["conversation_id"].map
    trend_value = s(sentiment["direction"]).map({"improving": 1.0, "stable": 0.5, "worsening": 0.0})
    c["sentiment"] = np.where(
        trend_value.notna(),
        0.5 * (s(sentiment["end"]) + 1) / 2 + 0.5 * trend_value,
        (s(sentiment["avg"]) + 1) / 2,
    )
    components = ["resolution", "efficiency", "sentiment", "goal_completion"]
    values = c[components].astype(float)
    w = np.array([weights[name] for name in components], dtype=float)
    present = values.notna().to_numpy()
    c["quality_score"] = (values.fillna(0).to_numpy() * w).sum(axis=1) / (present * w).sum(axis=1)
    return c


def reference_quality_metric(warehouse: Warehouse, quality: pd.DataFrame) -> pd.DataFrame:
    """quality_score in metrics_daily: sum and count of quality_score per day and segment."""
    exposures = frame(
        warehouse,
        "select test_name, conversation_id, variant from marts.ab_test_exposures where variant_count <= 1",
    )
    parts = [quality.assign(segment_type="all", segment_value="all")]
    for attribute in ATTRIBUTE_SEGMENTS:
        parts.append(quality.assign(segment_type=attribute, segment_value=quality[attribute].fillna("unknown").astype(str)))
    exposed = quality.merge(exposures, on="conversation_id")
    parts.append(exposed.assign(segment_type="experiment:" + exposed["test_name"], segment_value=exposed["variant"]))
    rows = pd.concat(parts, ignore_index=True)
    grouped = rows.groupby(["conversation_date", "segment_type", "segment_value"])["quality_score"]
    result = pd.DataFrame({"numerator": grouped.sum(), "denominator": grouped.count()}).reset_index()
    result = result[result["denominator"] > 0]
    result["value"] = result["numerator"] / result["denominator"]
    return result.rename(columns={"conversation_date": "metric_date"})


# ------------------------------------------------------------------------------ tests


def test_sentiment_start_end_trend_match_recomputation(built: Warehouse) -> None:
    actual = frame(
        built, "select conversation_id, sentiment_messages, avg_sentiment, sentiment_start, sentiment_end, "
        "sentiment_trend, sentiment_direction from marts.fct_conversation_quality",
    ).set_index("conversation_id")
    expected = reference_sentiment(built).set_index("conversation_id")
    started = {row[0] for row in built.query("select conversation_id from marts.fct_conversations where started")}
    # contract v1.3: exactly the started conversations with a scored user message
    assert set(actual.index) == set(expected.index) & started
    both = actual.join(expected, how="inner")
    assert len(both) > 300
    assert (both["sentiment_messages"] == both["n"]).all()
    for mine, theirs in (("avg_sentiment", "avg"), ("sentiment_start", "start"), ("sentiment_end", "end"),
                         ("sentiment_trend", "trend")):
        assert np.allclose(both[mine].astype(float), both[theirs].astype(float), atol=1e-12), mine
    # the trend is exactly the difference of the published start and end
    assert (both["sentiment_trend"] == both["sentiment_end"] - both["sentiment_start"]).all()
    assert (both["sentiment_direction"].fillna("-") == both["direction"].fillna("-")).all()
    # the generated data exercises every band, one and two messages, and the null direction below three
    assert set(both["sentiment_direction"].dropna()) == {"improving", "stable", "worsening"}
    assert {1, 2} <= set(both["n"]) and both.loc[both["n"] < 3, "sentiment_direction"].isna().all()
    assert (both.loc[both["n"] == 1, "sentiment_trend"] == 0).all()


def test_quality_components_and_score_match_recomputation(built: Warehouse) -> None:
    actual = frame(built, "select * from marts.fct_conversation_quality").set_index("conversation_id")
    expected = reference_quality(built).set_index("conversation_id")
    scored = set(reference_sentiment(built)["conversation_id"])
    # contract v1.3: one row per started conversation with a scored user message
    assert set(actual.index) == set(expected.index) & scored
    assert len(set(expected.index) - scored) > 0, "no started conversation without a scored message to leave out"
    both = actual.join(expected, rsuffix="_expected")
    for column in ("resolution", "efficiency", "sentiment", "goal_completion"):
        assert np.allclose(
            both[f"{column}_component"].astype(float), both[column].astype(float), equal_nan=True, atol=1e-12
        ), column
    assert np.allclose(both["quality_score"], both["quality_score_expected"], atol=1e-12)
    assert both["quality_score"].between(0, 1).all()
    # several values of every component occur, so the comparison can fail
    assert both["resolution_component"].nunique() == 3
    assert both["efficiency_component"].nunique() > 10


def test_quality_score_in_metrics_daily_matches_pandas(built: Warehouse) -> None:
    quality = reference_quality(built)
    expected = reference_quality_metric(built, quality)
    actual = frame(
        built, "select metric_date, segment_type, segment_value, numerator, denominator, value "
        "from marts.metrics_daily where metric_name = 'quality_score'",
    )
    actual["metric_date"] = pd.to_datetime(actual["metric_date"]).dt.date
    expected["metric_date"] = pd.to_datetime(expected["metric_date"]).dt.date
    key = ["metric_date", "segment_type", "segment_value"]
    merged = actual.merge(expected, on=key, how="outer", suffixes=("", "_expected"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][key].head(10)
    for column in ("numerator", "denominator", "value"):
        assert np.allclose(merged[column].astype(float), merged[f"{column}_expected"].astype(float), rtol=1e-9), column
    assert {"all", "agent_id", "channel"} <= set(actual["segment_type"])
    assert any(segment.startswith("experiment:") for segment in actual["segment_type"])


def test_quality_score_is_a_secondary_metric_of_every_experiment(built: Warehouse) -> None:
    rows = frame(
        built, "select test_name, variant, metric_role, sample_size, value from marts.ab_test_metrics "
        "where metric_name = 'quality_score'",
    )
    tests = {row[0] for row in built.query("select distinct test_name from seeds.experiments")}
    assert set(rows["test_name"]) == tests
    assert (rows["metric_role"] == "secondary").all()
    quality = reference_quality(built)
    exposures = frame(
        built, "select test_name, conversation_id, variant from marts.ab_test_exposures where variant_count <= 1"
    )
    expected = quality.merge(exposures, on="conversation_id").groupby(["test_name", "variant"])["quality_score"]
    for row in rows.itertuples():
        assert row.sample_size == expected.count().get((row.test_name, row.variant), 0)
        if row.sample_size:
            assert row.value == pytest.approx(expected.mean()[(row.test_name, row.variant)], rel=1e-9)


def test_classification_tables_have_the_same_columns_from_python_and_dbt(built: Warehouse) -> None:
    """The warehouse's tables were created by dbt's on-run-start hook (before the classifier ran)."""
    from convo_warehouse.lib.classify import judge, sentiment, store

    python_made = duckdb.connect()
    store.ensure_tables(python_made)
    sentiment.ensure_table(python_made)
    judge.ensure_table(python_made)
    dbt_made = open_warehouse(built.path)

    def columns(con, table):
        return con.execute(f"select column_name, column_type from (describe classification.{table})").fetchall()

    try:
        for table in ("stage_classifications", "message_sentiment", "conversation_judgments"):
            assert columns(python_made, table) == columns(dbt_made, table), table
    finally:
        dbt_made.close()


def test_every_unit_test_whole_table_grain_and_seed_test_holds(built: Warehouse) -> None:
    """Every dbt unit test (our SQL against its fixtures) and every model's grain over its whole
    table (``tag:grain``): a run leaves both out (``dbt_commands.production_build``), so they run
    here, where every model the project ships is built. Unit tests need their inputs' relations
    to exist, which this warehouse has. With them, the data tests of the shipped seeds, which the
    builds of the suite's warehouses of the shipped project leave out. A failing one fails
    ``built.dbt``; the counts prove the selection ran them all."""
    from convo_warehouse.lib.dbt_commands import GRAIN_TESTS

    (seed_tests,) = built.seed_tests_left_out()[1:]
    result = built.dbt("test", "--select", f"test_type:unit {GRAIN_TESTS} {seed_tests}")
    ran = Counter(
        "grain" if "grain" in node_result.node.tags
        else "seed" if node_result.node.name in seed_tests.split()
        else str(node_result.node.resource_type.value)
        for node_result in result.result.results
        if node_result.node.resource_type.value != "operation"  # the project's on-run hooks
    )
    manifest = built.manifest_json()
    grains = [node for node in manifest["nodes"].values() if "grain" in node.get("tags", [])]
    # every data test of a seed, and one of a model built from seeds alone (stg_seeds__*)
    assert {"seed.convo_warehouse.experiments", "model.convo_warehouse.stg_seeds__alert_rules"} <= {
        parent for node in manifest["nodes"].values() if node["name"] in seed_tests.split()
        for parent in node["depends_on"]["nodes"]
    }
    assert grains and manifest["unit_tests"]
    assert ran == {"unit_test": len(manifest["unit_tests"]), "grain": len(grains), "seed": len(seed_tests.split())}


def test_a_grain_test_finds_its_models_unique_key_and_fails_on_a_repeated_key(built: Warehouse, tmp_path) -> None:
    """The grain test without `columns` reads the model's unique_key from dbt's graph
    (tests/dbt/generic/test_grain.sql): a row of marts.fct_messages copied once fails it, by that
    one event_id, while the intact warehouse passes (the test above)."""
    from convo_warehouse.lib.dbt_commands import GRAIN_TESTS

    warehouse = built.copy(tmp_path / "repeated")
    (event_id,) = warehouse.query("select min(event_id) from marts.fct_messages")[0]
    warehouse.query("insert into marts.fct_messages select * from marts.fct_messages where event_id = ?", [event_id])
    result = warehouse.dbt("test", "--select", f"{GRAIN_TESTS},fct_messages", check=False)
    failed = [(r.node.name, r.failures) for r in result.result.results if r.status == "fail"]
    assert failed == [("grain_fct_messages_", 1)], failed
