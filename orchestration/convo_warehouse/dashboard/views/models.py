"""Models: the language models side by side over the period and filters.

A conversation counts for every model that wrote one of its agent messages
(``marts.fct_conversation_models``); its completion and handoff count through
``marts.metrics_by_conversation`` (the metrics' own numerators and
denominators), so a model's completion rate is the completion_rate of the
conversations it took part in. Tokens per conversation divide the tokens of
that model's messages by the conversations where they were reported; latency
is the mean ``latency_ms`` of its messages.
"""

from __future__ import annotations

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.data import frame, has_table
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib.scope import Scope, scope_cte


def model_comparison(con, scope: Scope = Scope()) -> pd.DataFrame:
    """One row per model: conversations, completion_rate, handoff_rate, tokens_per_conversation,
    avg_latency_ms (and their numerators and denominators), most conversations first."""
    scope_sql, params = scope_cte(scope)
    return frame(
        con,
        f"""
        with scope as ({scope_sql})
        select fct_conversation_models.model,
               count(*) as conversations,
               sum(metrics_by_conversation.completion_rate__numerator) as completed,
               sum(metrics_by_conversation.completion_rate__denominator) as started,
               sum(metrics_by_conversation.completion_rate__numerator)
                   / nullif(sum(metrics_by_conversation.completion_rate__denominator), 0) as completion_rate,
               sum(metrics_by_conversation.handoff_rate__numerator)
                   / nullif(sum(metrics_by_conversation.handoff_rate__denominator), 0) as handoff_rate,
               sum(fct_conversation_models.input_tokens + fct_conversation_models.output_tokens) as tokens,
               count(*) filter (where fct_conversation_models.token_measurements > 0) as conversations_with_tokens,
               sum(fct_conversation_models.input_tokens + fct_conversation_models.output_tokens)
                   / nullif(count(*) filter (where fct_conversation_models.token_measurements > 0), 0)
                   as tokens_per_conversation,
               sum(fct_conversation_models.agent_messages) as agent_messages,
               sum(fct_conversation_models.latency_ms_total)
                   / nullif(sum(fct_conversation_models.latency_measurements), 0) as avg_latency_ms
        from marts.fct_conversation_models
        inner join scope on fct_conversation_models.conversation_id = scope.conversation_id
        inner join marts.metrics_by_conversation
            on fct_conversation_models.conversation_id = metrics_by_conversation.conversation_id
        group by fct_conversation_models.model
        order by conversations desc, fct_conversation_models.model
        """,
        params,
    )


def _chart(models: pd.DataFrame):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=3, subplot_titles=("Completion rate", "Handoff rate", "Mean latency (ms)"))
    figure.add_trace(go.Bar(x=models["model"], y=models["completion_rate"], name="completion"), row=1, col=1)
    figure.add_trace(go.Bar(x=models["model"], y=models["handoff_rate"], name="handoff"), row=1, col=2)
    figure.add_trace(go.Bar(x=models["model"], y=models["avg_latency_ms"], name="latency (ms)"), row=1, col=3)
    figure.update_yaxes(tickformat=".0%", row=1, col=1)
    figure.update_yaxes(tickformat=".0%", row=1, col=2)
    figure.update_layout(height=340, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def render(context) -> None:
    import streamlit as st

    st.title("Models")
    st.caption(
        f"**{context.choice.period_words}**; {fmt.markdown_safe(context.scope.describe(period=False))}. A conversation counts for every model that "
        "wrote one of its agent messages, so models' conversations can add up to more than the total."
    )
    if not has_table(context.con, "marts.fct_conversation_models"):
        st.info("This snapshot has no per-model mart yet: run `convo-warehouse run` to publish one.")
        return
    models = model_comparison(context.con, context.scope)
    if models.empty:
        st.info("No agent message names a model in this period and filters.")
        return
    st.plotly_chart(_chart(models), key="models-chart")
    tables.show(
        pd.DataFrame({
            "model": models["model"],
            "conversations": [fmt.count(value) for value in models["conversations"]],
            "completion rate": [fmt.percent(value) for value in models["completion_rate"]],
            "handoff rate": [fmt.percent(value) for value in models["handoff_rate"]],
            "tokens per conversation": [fmt.number(value, 0) for value in models["tokens_per_conversation"]],
            "mean latency": [fmt.milliseconds(value) for value in models["avg_latency_ms"]],
        }),
        models,
        title="models",
        key="models",
    )


PAGE = Page(title="Models", url_path="models", icon=":material/smart_toy:", order=45, render=render)
