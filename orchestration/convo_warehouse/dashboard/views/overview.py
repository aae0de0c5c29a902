"""Overview: the key rates of the chosen period and filters, against the period before, with daily sparklines."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib import metric_views
from convo_warehouse.lib.scope import Scope

KEY_METRICS = (
    "conversations",
    "completion_rate",
    "resolution_rate",
    "handoff_rate",
    "abandonment_rate",
    "conversion_rate",
    "sales_response_rate",
    "fallback_rate",
    "avg_satisfaction_score",
    "avg_first_response_ms",
    "sentiment_change",
    "first_response_ms_p95",
)


@dataclasses.dataclass
class KeyRate:
    """One key metric over the period, over the period of the same length before it, and per day."""

    metric_name: str
    unit: str | None
    description: str | None
    value: float | None
    previous: float | None
    series: list[tuple[dt.date, float]]

    @property
    def shown(self) -> str:
        return fmt.metric_value(self.value, self.unit)

    @property
    def change(self) -> str:
        return fmt.metric_change(self.value, self.previous, self.unit)


def key_rates(con, scope: Scope) -> list[KeyRate]:
    """The key metrics over ``scope``, the same filters over the period before, and their daily values."""
    glossary = metric_views.glossary(con)
    names = [name for name in KEY_METRICS if name in glossary]
    now = metric_views.metric_values(con, scope, names)
    before = {}
    if scope.start is not None and scope.end is not None:
        start, end = metric_views.previous_period(scope.start, scope.end)
        before = metric_views.metric_values(con, dataclasses.replace(scope, start=start, end=end), names)
    daily = metric_views.daily_values(con, scope, names)
    rates = []
    for name in names:
        info = glossary[name]
        rates.append(
            KeyRate(
                metric_name=name,
                unit=info.unit,
                description=info.description,
                value=now[name].value,
                previous=before[name].value if name in before else None,
                series=daily[name],
            )
        )
    return rates


def label(metric_name: str) -> str:
    """``avg_first_response_ms`` -> "Avg first response" (units are in the value)."""
    words = metric_name.removesuffix("_ms").removesuffix("_seconds").replace("_", " ")
    return words[:1].upper() + words[1:]


def render(context) -> None:
    import streamlit as st

    st.title("Overview")
    scope = context.scope
    rates = key_rates(context.con, scope)
    if not rates or rates[0].value in (None, 0):
        st.info(f"No conversations in {context.choice.period_words} with these filters.")
        return
    st.caption(
        f"**{context.choice.period_words}**; {fmt.markdown_safe(scope.describe(period=False))}. Change is against the period of the same "
        "length just before: percentage points for rates, relative change otherwise. Sparklines: one point "
        "per day."
    )
    columns = st.columns(3)
    for index, rate in enumerate(rates):
        with columns[index % 3], st.container(border=True):
            st.metric(
                label(rate.metric_name),
                rate.shown,
                delta=None if rate.change == fmt.MISSING else rate.change,
                delta_color="off",
                help=rate.description,
                chart_data=[value for _, value in rate.series] or None,
                chart_type="line",
            )
    with st.expander("These numbers as a table"):
        tables.show(
            pd.DataFrame({
                "metric": [rate.metric_name for rate in rates],
                "value": [rate.shown for rate in rates],
                "period before": [fmt.metric_value(rate.previous, rate.unit) for rate in rates],
                "change": [rate.change for rate in rates],
            }),
            pd.DataFrame({
                "metric_name": [rate.metric_name for rate in rates],
                "value": [rate.value for rate in rates],
                "previous_period_value": [rate.previous for rate in rates],
                "start": scope.start, "end": scope.end,
            }),
            title="Key rates",
            key="key-rates",
        )


PAGE = Page(title="Overview", url_path="overview", icon=":material/dashboard:", order=10, render=render)
