"""Overview: the latest complete day's key rates, with sparklines and week-over-week change."""

from __future__ import annotations

import dataclasses
import datetime as dt

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard.data import records
from convo_warehouse.dashboard.views import Page

KEY_METRICS = (
    "conversations",
    "completion_rate",
    "resolution_rate",
    "handoff_rate",
    "abandonment_rate",
    "conversion_rate",
    "fallback_rate",
    "avg_satisfaction_score",
    "avg_first_response_ms",
)
SPARKLINE_DAYS = 28


@dataclasses.dataclass
class KeyRate:
    """One key metric on one day, the same weekday a week earlier, and its recent daily values."""

    metric_name: str
    unit: str | None
    description: str | None
    value: float | None
    week_ago: float | None
    series: list[tuple[dt.date, float]]

    @property
    def shown(self) -> str:
        return fmt.metric_value(self.value, self.unit)

    @property
    def change(self) -> str:
        return fmt.metric_change(self.value, self.week_ago, self.unit)


def latest_complete_day(con) -> dt.date | None:
    """The newest day with metrics before the day of the newest event (that day is still running);
    the newest day itself when there is no earlier one."""
    row = con.execute(
        """
        with newest as (
            select cast(max(last_event_at) as date) as newest_day from marts.fct_conversations
        )
        select
            max(case when metrics_daily.metric_date < newest.newest_day then metrics_daily.metric_date end),
            max(metrics_daily.metric_date)
        from marts.metrics_daily, newest
        where metrics_daily.segment_type = 'all'
        """
    ).fetchone()
    return row[0] or row[1]


def key_rates(con, day: dt.date) -> list[KeyRate]:
    """The key metrics (segment all) on ``day``, a week before, and the last 28 days up to ``day``."""
    placeholders = ", ".join("?" for _ in KEY_METRICS)
    rows = records(
        con,
        f"""
        select metrics_daily.metric_name, metrics_daily.metric_date, metrics_daily.value
        from marts.metrics_daily
        where metrics_daily.segment_type = 'all'
            and metrics_daily.metric_name in ({placeholders})
            and metrics_daily.metric_date between ? and ?
        order by metrics_daily.metric_date
        """,
        [*KEY_METRICS, day - dt.timedelta(days=SPARKLINE_DAYS - 1), day],
    )
    glossary = {
        row["metric_name"]: row
        for row in records(con, "select metric_name, unit, description from marts.dim_metrics")
    }
    week_ago = day - dt.timedelta(days=7)
    rates = []
    for name in KEY_METRICS:
        series = [(row["metric_date"], row["value"]) for row in rows if row["metric_name"] == name]
        by_day = dict(series)
        info = glossary.get(name, {})
        rates.append(
            KeyRate(
                metric_name=name,
                unit=info.get("unit"),
                description=info.get("description"),
                value=by_day.get(day),
                week_ago=by_day.get(week_ago),
                series=series,
            )
        )
    return rates


def label(metric_name: str) -> str:
    """``avg_first_response_ms`` -> "Avg first response" (units are in the value)."""
    words = metric_name.removesuffix("_ms").removesuffix("_seconds").replace("_", " ")
    return words[:1].upper() + words[1:]


def render(con, snapshot) -> None:
    import streamlit as st

    st.title("Overview")
    day = latest_complete_day(con)
    if day is None:
        st.info("No daily metrics in this snapshot yet.")
        return
    st.caption(
        f"Latest complete day: **{day:%A %d %B %Y}** (UTC). Change is against the same weekday a "
        "week earlier: percentage points for rates, relative change otherwise. Sparklines: last 28 days."
    )
    rates = key_rates(con, day)
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


PAGE = Page(title="Overview", url_path="overview", icon=":material/dashboard:", order=10, render=render)
