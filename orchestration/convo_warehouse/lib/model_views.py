"""The agent's language models compared, with statistics: what the Models page and ``/api/models`` show.

A conversation counts for every model that wrote one of its agent messages
(``marts.fct_conversation_models``); its completion, handoff and satisfaction
come from ``marts.metrics_by_conversation`` (the metrics' own numerators and
denominators), so a model's completion rate is the completion_rate of the
started conversations it took part in. Per model and measure:

- completion and handoff: the rate with its 95% Wilson interval, and the
  two-proportion z-test (pooled, as the A/B results) against the best model;
- satisfaction (``satisfaction_score``, 0..1): the mean with its 95% t
  interval (mean +- t(0.975, n - 1) s / sqrt(n)), and Welch's t-test against
  the best model.

The best model of a measure is the one with the highest completion rate, the
lowest handoff rate or the highest mean satisfaction among models with at
least ``min_started`` started conversations, ``unknown`` (messages that name
no model) excepted. Each other model's difference from it (model - best)
comes with its 95% interval and p-value; the p-values of a measure are
Holm-adjusted over the models compared (``*_p_adjusted``), and
``*_worse_than_best`` says the adjusted p is below 0.05 (a model too small to
be compared has null tests). Formulas: ``lib/experiments.py``, shared with
the A/B tests.

Beside them, what the model's calls cost (``cost_usd`` over the priced agent
messages, ``seeds/model_prices.csv``), how many messages had no price, tokens
and latency. No Streamlit and no Dagster here.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from convo_warehouse.lib import experiments
from convo_warehouse.lib.scope import Scope, scope_cte

UNKNOWN_MODEL = "unknown"
#: started conversations a model needs to be the best of a measure or be tested against it
MIN_STARTED = 30
#: (measure, its rate or mean column, which way is better)
MEASURES = (("completion", "completion_rate", "higher"), ("handoff", "handoff_rate", "lower"),
            ("satisfaction", "satisfaction_mean", "higher"))


def model_totals(con, scope: Scope = Scope()) -> pd.DataFrame:
    """One row per model: the sums the statistics are computed from, most conversations first."""
    scope_sql, params = scope_cte(scope)
    return con.execute(
        f"""
        with scope as ({scope_sql}),

        conversation_models as (
            select
                fct_conversation_models.*,
                metrics_by_conversation.completion_rate__numerator as completed,
                metrics_by_conversation.completion_rate__denominator as started,
                metrics_by_conversation.handoff_rate__numerator as handed_off,
                metrics_by_conversation.avg_satisfaction_score__numerator as satisfaction,
                metrics_by_conversation.avg_satisfaction_score__denominator as has_satisfaction
            from marts.fct_conversation_models
            inner join scope on fct_conversation_models.conversation_id = scope.conversation_id
            inner join marts.metrics_by_conversation
                on fct_conversation_models.conversation_id = metrics_by_conversation.conversation_id
        )

        select
            model,
            count(*) as conversations,
            sum(started) as started,
            sum(completed) as completed,
            sum(handed_off) as handed_off,
            sum(has_satisfaction) as satisfaction_n,
            sum(satisfaction * has_satisfaction) as satisfaction_sum,
            sum(satisfaction * satisfaction * has_satisfaction) as satisfaction_sum_squares,
            sum(agent_messages) as agent_messages,
            sum(input_tokens + output_tokens) as tokens,
            count(*) filter (where token_measurements > 0) as conversations_with_tokens,
            sum(latency_ms_total) / nullif(sum(latency_measurements), 0) as avg_latency_ms,
            sum(priced_agent_messages) as priced_agent_messages,
            sum(unpriced_agent_messages) as unpriced_agent_messages,
            count(*) filter (where unpriced_agent_messages = 0) as priced_conversations,
            sum(cost_usd) filter (where unpriced_agent_messages = 0) as priced_conversations_cost_usd,
            sum(cost_usd) as cost_usd
        from conversation_models
        group by model
        order by conversations desc, model
        """,
        params,
    ).df()


def t_interval(mean: float | None, variance: float | None, n: int) -> tuple[float | None, float | None]:
    """95% interval of a mean: mean +- t(0.975, n - 1) sqrt(variance / n); None below two observations."""
    if mean is None or variance is None or n < 2:
        return None, None
    half = float(stats.t.ppf(0.975, n - 1)) * math.sqrt(max(variance, 0.0) / n)
    return mean - half, mean + half


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def model_comparison(con, scope: Scope = Scope(), min_started: int = MIN_STARTED) -> pd.DataFrame:
    """One row per model with every measure, its interval and its test against the best model.

    Columns: model, conversations, started, completed, completion_rate, completion_ci_low /
    _high, handed_off, handoff_rate, handoff_ci_low / _high, satisfaction_n, satisfaction_mean,
    satisfaction_sd, satisfaction_ci_low / _high; per measure (completion, handoff,
    satisfaction): <measure>_is_best, <measure>_difference (model - best),
    <measure>_difference_ci_low / _high, <measure>_p_value, <measure>_p_adjusted (Holm),
    <measure>_worse_than_best; is_comparable (enough started conversations, a named model);
    cost_usd, priced / unpriced agent messages, cost_per_conversation (over the conversations
    whose messages of this model are all priced), tokens, tokens_per_conversation,
    agent_messages, avg_latency_ms. Most conversations first.
    """
    totals = model_totals(con, scope)
    rows = []
    for total in totals.to_dict("records"):
        started = int(total["started"] or 0)
        completed, handed_off = int(total["completed"] or 0), int(total["handed_off"] or 0)
        n = int(total["satisfaction_n"] or 0)
        mean = total["satisfaction_sum"] / n if n else None
        variance = None
        if n >= 2:
            variance = max(0.0, (total["satisfaction_sum_squares"] - n * mean * mean) / (n - 1))
        row = {
            "model": total["model"],
            "conversations": int(total["conversations"]),
            "started": started,
            "completed": completed,
            "completion_rate": experiments.rate(completed, started),
            "handed_off": handed_off,
            "handoff_rate": experiments.rate(handed_off, started),
            "satisfaction_n": n,
            "satisfaction_mean": mean,
            "satisfaction_sd": math.sqrt(variance) if variance is not None else None,
            "satisfaction_variance": variance,
            "is_comparable": started >= min_started and total["model"] != UNKNOWN_MODEL,
        }
        row["completion_ci_low"], row["completion_ci_high"] = experiments.wilson_interval(completed, started)
        row["handoff_ci_low"], row["handoff_ci_high"] = experiments.wilson_interval(handed_off, started)
        row["satisfaction_ci_low"], row["satisfaction_ci_high"] = t_interval(mean, variance, n)
        priced_conversations = int(total["priced_conversations"] or 0)
        with_tokens = int(total["conversations_with_tokens"] or 0)
        row.update({
            "cost_usd": _number(total["cost_usd"]),
            "priced_agent_messages": int(total["priced_agent_messages"] or 0),
            "unpriced_agent_messages": int(total["unpriced_agent_messages"] or 0),
            "priced_conversations": priced_conversations,
            "cost_per_conversation": (_number(total["priced_conversations_cost_usd"]) or 0.0) / priced_conversations
            if priced_conversations else None,
            "tokens": int(total["tokens"] or 0),
            "tokens_per_conversation": int(total["tokens"] or 0) / with_tokens if with_tokens else None,
            "agent_messages": int(total["agent_messages"] or 0),
            "avg_latency_ms": _number(total["avg_latency_ms"]),
        })
        rows.append(row)
    for measure, column, better in MEASURES:
        _compare_with_best(rows, measure, column, better)
    for row in rows:
        row.pop("satisfaction_variance")
    return pd.DataFrame(rows, columns=_COLUMNS)


def _compare_with_best(rows: list[dict], measure: str, column: str, better: str) -> None:
    candidates = [row for row in rows if row["is_comparable"] and row[column] is not None]
    sign = -1 if better == "higher" else 1
    # ties go to the model with more started conversations, then to the first name
    best = min(candidates, key=lambda row: (sign * row[column], -row["started"], row["model"])) if candidates else None
    for row in rows:
        row.update({f"{measure}_is_best": row is best, f"{measure}_difference": None,
                    f"{measure}_difference_ci_low": None, f"{measure}_difference_ci_high": None,
                    f"{measure}_p_value": None, f"{measure}_p_adjusted": None, f"{measure}_worse_than_best": None})
        if best is None or row is best or not row["is_comparable"]:
            continue
        if measure == "satisfaction":
            test = experiments.compare_means(best["satisfaction_mean"], best["satisfaction_variance"],
                                             best["satisfaction_n"], row["satisfaction_mean"],
                                             row["satisfaction_variance"], row["satisfaction_n"])
            difference, low, high, p_value = test.difference, test.ci_low, test.ci_high, test.p_value
        else:
            successes = "completed" if measure == "completion" else "handed_off"
            test = experiments.compare_proportions(best[successes], best["started"], row[successes], row["started"])
            difference, low, high, p_value = test.absolute_lift, test.ci_low, test.ci_high, test.p_value
        row.update({f"{measure}_difference": difference, f"{measure}_difference_ci_low": low,
                    f"{measure}_difference_ci_high": high, f"{measure}_p_value": p_value})
    tested = [row for row in rows if row[f"{measure}_p_value"] is not None]
    for row, adjusted in zip(tested, experiments.holm([row[f"{measure}_p_value"] for row in tested]), strict=True):
        row[f"{measure}_p_adjusted"] = adjusted
        row[f"{measure}_worse_than_best"] = adjusted < experiments.ALPHA


_COLUMNS = [
    "model", "conversations", "started", "is_comparable",
    "completed", "completion_rate", "completion_ci_low", "completion_ci_high",
    "handed_off", "handoff_rate", "handoff_ci_low", "handoff_ci_high",
    "satisfaction_n", "satisfaction_mean", "satisfaction_sd", "satisfaction_ci_low", "satisfaction_ci_high",
    *[f"{measure}_{suffix}" for measure, _, _ in MEASURES
      for suffix in ("is_best", "difference", "difference_ci_low", "difference_ci_high", "p_value", "p_adjusted",
                     "worse_than_best")],
    "cost_usd", "cost_per_conversation", "priced_conversations", "priced_agent_messages", "unpriced_agent_messages",
    "tokens", "tokens_per_conversation", "agent_messages", "avg_latency_ms",
]
