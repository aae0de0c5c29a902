"""Models: the language models side by side over the period and filters, with statistics.

A conversation counts for every model that wrote one of its agent messages
(``marts.fct_conversation_models``); its completion, handoff and satisfaction
count through ``marts.metrics_by_conversation``. Each rate has its 95% Wilson
interval and the satisfaction mean its 95% t interval; each model is tested
against the best model of the measure (two-proportion z-test, Welch's t-test,
Holm-adjusted over the models): ``lib/model_views.py``, which the read API's
``/api/models`` serves too. Costs are the calls' tokens at the price valid at
each message's time (``seeds/model_prices.csv``); a model without a price
shows its unpriced messages, never a guessed cost.
"""

from __future__ import annotations

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.data import has_table
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib.model_views import MIN_STARTED, model_comparison

__all__ = ["PAGE", "model_comparison"]


def _interval(low: float | None, high: float | None, render) -> str:
    return f"{render(low)} – {render(high)}" if low is not None and low == low else fmt.MISSING


def _versus_best(row, measure: str, render) -> str:
    """"best", "-4.1 pts (p 0.03) worse", "-0.2 pts (p 0.81)", or a dash when not tested."""
    if row[f"{measure}_is_best"]:
        return "best"
    p_adjusted = row[f"{measure}_p_adjusted"]
    if p_adjusted is None or p_adjusted != p_adjusted:
        return fmt.MISSING
    worse = " worse" if row[f"{measure}_worse_than_best"] else ""
    return f"{render(row[f'{measure}_difference'])} (p {fmt.format_p(p_adjusted)}){worse}"


def _signed_score(value: float | None) -> str:
    return fmt.MISSING if value is None or value != value else f"{value:+.3f}"


def _chart(models: pd.DataFrame):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=3, subplot_titles=("Completion rate", "Handoff rate", "Mean satisfaction"))
    for col, (value, low, high) in enumerate((
        ("completion_rate", "completion_ci_low", "completion_ci_high"),
        ("handoff_rate", "handoff_ci_low", "handoff_ci_high"),
        ("satisfaction_mean", "satisfaction_ci_low", "satisfaction_ci_high"),
    ), start=1):
        figure.add_trace(go.Bar(
            x=models["model"], y=models[value], name=value,
            error_y={"type": "data", "symmetric": False, "array": models[high] - models[value],
                     "arrayminus": models[value] - models[low]},
        ), row=1, col=col)
    figure.update_yaxes(tickformat=".0%", row=1, col=1)
    figure.update_yaxes(tickformat=".0%", row=1, col=2)
    figure.update_layout(height=340, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def render(context) -> None:
    import streamlit as st

    st.title("Models")
    st.caption(
        f"**{context.choice.period_words}**; {fmt.markdown_safe(context.scope.describe(period=False))}. A conversation counts for every model that "
        "wrote one of its agent messages, so models' conversations can add up to more than the total. Bars show 95% "
        "intervals (Wilson for rates, t for the satisfaction mean); each model is tested against the best one "
        f"(z-test for rates, Welch's t-test for satisfaction, Holm-adjusted) when both have at least {MIN_STARTED} "
        "started conversations."
    )
    if not has_table(context.con, "marts.fct_conversation_models"):
        st.info("This snapshot has no per-model mart yet: run `convo-warehouse run` to publish one.")
        return
    models = model_comparison(context.con, context.scope)
    if models.empty:
        st.info("No agent message names a model in this period and filters.")
        return
    st.plotly_chart(_chart(models), key="models-chart")
    shown = pd.DataFrame({
        "model": models["model"],
        "conversations": [fmt.count(value) for value in models["conversations"]],
        "completion rate": [fmt.percent(value) for value in models["completion_rate"]],
        "completion 95% CI": [_interval(low, high, fmt.percent)
                              for low, high in zip(models["completion_ci_low"], models["completion_ci_high"])],
        "completion vs best": [_versus_best(row, "completion", fmt.points) for _, row in models.iterrows()],
        "handoff rate": [fmt.percent(value) for value in models["handoff_rate"]],
        "handoff 95% CI": [_interval(low, high, fmt.percent)
                           for low, high in zip(models["handoff_ci_low"], models["handoff_ci_high"])],
        "handoff vs best": [_versus_best(row, "handoff", fmt.points) for _, row in models.iterrows()],
        "satisfaction": [fmt.number(value, 3) for value in models["satisfaction_mean"]],
        "satisfaction 95% CI": [_interval(low, high, lambda value: fmt.number(value, 3))
                                for low, high in zip(models["satisfaction_ci_low"], models["satisfaction_ci_high"])],
        "satisfaction vs best": [_versus_best(row, "satisfaction", _signed_score) for _, row in models.iterrows()],
        "cost per conversation": [f"${value:,.4f}" if value is not None and value == value else fmt.MISSING
                                  for value in models["cost_per_conversation"]],
        "unpriced messages": [fmt.count(value) for value in models["unpriced_agent_messages"]],
        "tokens per conversation": [fmt.number(value, 0) for value in models["tokens_per_conversation"]],
        "mean latency": [fmt.milliseconds(value) for value in models["avg_latency_ms"]],
    })
    tables.show(shown, models, title="models", key="models")
    unpriced = models[models["unpriced_agent_messages"] > 0]
    if not unpriced.empty:
        st.caption(
            "No price in `seeds/model_prices.csv` at the messages' time for: "
            + ", ".join(f"{fmt.markdown_safe(str(model))} ({fmt.count(count)} messages)"
                        for model, count in zip(unpriced["model"], unpriced["unpriced_agent_messages"]))
            + ". Add a row (model, prices per million tokens, valid_from) and re-run to cost them."
        )


PAGE = Page(title="Models", url_path="models", icon=":material/smart_toy:", order=45, render=render)
