"""Alerts: the metric alerts (``marts.metric_alerts``) whose window starts in the period, by severity.

An alert watches one segment: with a channel or agent filter, the alerts on
other channels or agents are left out (those on every conversation stay).
"""

from __future__ import annotations

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.data import frame, has_table
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib.scope import Scope

SEVERITY_ORDER = ("high", "medium", "low")


def fired_alerts(con, scope: Scope = Scope()) -> pd.DataFrame:
    """Fired alerts of the scope's period and segments, most severe first, then newest window first."""
    if not has_table(con, "marts.metric_alerts"):
        return pd.DataFrame()
    alerts = frame(
        con,
        """
        select metric_alerts.severity, metric_alerts.rule_name, metric_alerts.metric_name,
               metric_alerts.segment_type, metric_alerts.segment_value, metric_alerts.time_window,
               metric_alerts.window_start, metric_alerts.window_end, metric_alerts.condition,
               metric_alerts.observed_value, metric_alerts.baseline_value, metric_alerts.threshold,
               metric_alerts.sample_size, dim_metrics.unit
        from marts.metric_alerts
        left join marts.dim_metrics on metric_alerts.metric_name = dim_metrics.metric_name
        where (cast(? as date) is null or cast(metric_alerts.window_start as date) >= cast(? as date))
            and (cast(? as date) is null or cast(metric_alerts.window_start as date) <= cast(? as date))
        """,
        [scope.start, scope.start, scope.end, scope.end],
    )
    for segment_type, values in (("channel", scope.channels), ("agent_id", scope.agents)):
        if values:
            alerts = alerts[(alerts["segment_type"] != segment_type) | alerts["segment_value"].isin(values)]
    rank = {severity: index for index, severity in enumerate(SEVERITY_ORDER)}
    alerts["severity_rank"] = alerts["severity"].str.lower().map(rank).fillna(len(rank))
    return alerts.sort_values(["severity_rank", "window_start"], ascending=[True, False], kind="stable").drop(
        columns="severity_rank"
    )


def counts_by_severity(alerts: pd.DataFrame) -> dict[str, int]:
    """Number of fired alerts per severity, most severe first (severities without alerts: 0)."""
    counts = {severity: 0 for severity in SEVERITY_ORDER}
    if not alerts.empty:
        for severity, number in alerts["severity"].str.lower().value_counts().items():
            counts[severity] = int(number)
    return counts


def render(context) -> None:
    import plotly.express as px
    import streamlit as st

    st.title("Alerts")
    st.caption(f"Rules in seeds/alert_rules.csv, evaluated on fixed UTC windows (1h, 4h, 1d). Windows starting in "
               f"**{context.choice.period_words}**; with a channel or agent filter, alerts on other channels or "
               "agents are left out.")
    alerts = fired_alerts(context.con, context.scope)
    counts = counts_by_severity(alerts)
    for column, (severity, number) in zip(st.columns(len(counts)), counts.items(), strict=True):
        column.metric(f"{severity.capitalize()} severity", fmt.count(number))
    if alerts.empty:
        st.success("No alert fired.")
        return
    per_day = (
        alerts.assign(day=alerts["window_start"].dt.strftime("%Y-%m-%d"))
        .groupby(["day", "severity"])
        .size()
        .reset_index(name="alerts")
    )
    chart = px.bar(
        per_day,
        x="day",
        y="alerts",
        color="severity",
        category_orders={"severity": list(SEVERITY_ORDER)},
        color_discrete_map={"high": "#d62728", "medium": "#ff7f0e", "low": "#bcbd22"},
    )
    chart.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10}, bargap=0.5)
    chart.update_xaxes(type="category", title="day of the alert window (UTC)")
    st.plotly_chart(chart, key="alerts-per-day")
    most_severe = next(severity for severity, number in counts.items() if number)
    for severity in SEVERITY_ORDER:
        rows = alerts[alerts["severity"].str.lower() == severity]
        if rows.empty:
            continue
        with st.expander(f"{severity.capitalize()}: {len(rows):,} alert(s)", expanded=severity == most_severe):
            tables.show(
                pd.DataFrame(
                    {
                        "window (UTC)": [
                            f"{start:%Y-%m-%d %H:%M} ({window})"
                            for start, window in zip(rows["window_start"], rows["time_window"], strict=True)
                        ],
                        "rule": rows["rule_name"],
                        "metric": rows["metric_name"],
                        "segment": rows["segment_type"] + " = " + rows["segment_value"],
                        "observed": [fmt.metric_value(v, u) for v, u in zip(rows["observed_value"], rows["unit"], strict=True)],
                        "baseline": [fmt.metric_value(v, u) for v, u in zip(rows["baseline_value"], rows["unit"], strict=True)],
                        "condition": rows["condition"] + " " + rows["threshold"].map(lambda value: f"{value:g}"),
                        "sample": [fmt.count(value) for value in rows["sample_size"]],
                    }
                ),
                rows.drop(columns="unit"),
                title=f"{severity} alerts",
                key=f"alerts-{severity}",
            )


PAGE = Page(title="Alerts", url_path="alerts", icon=":material/notifications:", order=50, render=render)
