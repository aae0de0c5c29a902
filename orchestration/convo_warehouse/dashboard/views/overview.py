"""Overview: the key rates of the chosen period and filters, against the period before, with daily sparklines;
then when conversations go well: a heatmap of a timing rate by weekday and UTC hour of the first event
(``lib/timing_views.py`` over ``marts.timing_daily``)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib import metric_views, timing_views
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


TIMING_LABELS = {
    "interaction_rate": "interaction (initialized and engaged / initialized)",
    "engagement_rate": "engagement (engaged / started)",
    "completion_rate": "completion (completed / started)",
}


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


def timing_heatmap(cells: list[timing_views.TimingCell], rate: str):
    """The rate by weekday (rows, Monday on top) and UTC hour (columns); hovering a cell shows its
    numerator and denominator. Empty where the period has no conversation or no denominator."""
    import plotly.graph_objects as go

    numerator, denominator = timing_views.RATES[rate]
    counts = [[""] * 24 for _ in timing_views.WEEKDAYS]
    for cell in cells:
        counts[cell.weekday - 1][cell.hour_of_day] = (
            f"{fmt.count(getattr(cell, numerator))} of {fmt.count(getattr(cell, denominator))}")
    figure = go.Figure(go.Heatmap(
        z=timing_views.grid(cells, rate), x=[f"{hour:02d}h" for hour in range(24)], y=list(timing_views.WEEKDAYS),
        customdata=counts, colorscale="Blues", zmin=0, zmax=1, colorbar={"tickformat": ".0%"},
        hovertemplate="%{y} %{x} UTC: %{z:.1%} (%{customdata})<extra></extra>", hoverongaps=False,
    ))
    figure.update_layout(height=330, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    figure.update_yaxes(autorange="reversed")
    return figure


def timing_frame(cells: list[timing_views.TimingCell]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table shown, its raw values for the CSV): every weekday and hour with a conversation."""
    shown = pd.DataFrame({
        "weekday": [cell.weekday_name for cell in cells],
        "hour (UTC)": [f"{cell.hour_of_day:02d}h" for cell in cells],
        "conversations": [fmt.count(cell.conversations) for cell in cells],
        **{name.removesuffix("_rate"): [fmt.percent(cell.rate(name)) for cell in cells] for name in timing_views.RATES},
    })
    return shown, pd.DataFrame([cell.as_dict() for cell in cells])


def _timing(context) -> None:
    import streamlit as st

    scope = context.scope
    st.subheader("When conversations go well")
    rate = st.segmented_control(
        "Rate", list(timing_views.RATES), default="completion_rate", required=True,
        format_func=lambda name: TIMING_LABELS[name], key="timing", bind="query-params",
    ) or "completion_rate"
    ignored = " The experiment variant filter does not apply here." if scope.experiment else ""
    st.caption(
        f"**{context.choice.period_words}**; {fmt.markdown_safe(scope.describe(period=False))}. Each "
        "conversation counts in the weekday of its day and the UTC hour of its first event; each cell is its "
        f"conversations' numerator over their denominator, not an average of daily rates.{ignored}"
    )
    cells = timing_views.timing_cells(context.con, scope)
    if not cells:
        st.info("No conversations in this period with these filters.")
        return
    st.plotly_chart(timing_heatmap(cells, rate), key="timing-heatmap")
    with st.expander("Every weekday and hour as a table"):
        shown, raw = timing_frame(cells)
        tables.show(shown, raw, title="timing by weekday and hour", key="timing")


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
    _timing(context)


PAGE = Page(title="Overview", url_path="overview", icon=":material/dashboard:", order=10, render=render)
