"""The contract's metrics (../shared/contract/marts.md), recomputed with pandas from the
conversation facts, and the comparison with what dbt built (``marts.metrics_daily`` /
``metrics_hourly``): shared by the metrics marts' tests and the incremental scenario, which
compares after every run. Nothing here reads convo_warehouse's code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from support.warehouse import Warehouse, frame

SALES_STAGES = ["started", "responded", "qualified", "booked", "attended", "converted"]
KEY = ["metric_date", "metric_name", "segment_type", "segment_value"]
HOURLY_KEY = ["metric_hour", "metric_name", "segment_type", "segment_value"]
ATTRIBUTE_SEGMENTS = ["channel", "agent_id", "device", "source", "language", "environment"]


def metrics_daily(warehouse: Warehouse) -> pd.DataFrame:
    """``marts.metrics_daily`` in the reference's columns."""
    actual = frame(
        warehouse, "select metric_date, metric_name, segment_type, segment_value, numerator, denominator, value "
        "from marts.metrics_daily",
    )
    actual["metric_date"] = pd.to_datetime(actual["metric_date"]).dt.date
    return actual


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
