"""Metrics over time by segment: pick a metric and a segment type; fired alerts are marked on the chart."""

from __future__ import annotations

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard.data import frame, has_table, records
from convo_warehouse.dashboard.views import Page

MAX_SEGMENTS_SHOWN = 8


def metric_glossary(con) -> list[dict]:
    """Metrics in glossary order, with unit and description."""
    return records(
        con,
        "select metric_name, unit, description from marts.dim_metrics order by display_order, metric_name",
    )


def segment_types(con) -> list[str]:
    """Segment types present in metrics_daily, ``all`` first."""
    rows = con.execute(
        "select distinct segment_type from marts.metrics_daily order by segment_type = 'all' desc, segment_type"
    ).fetchall()
    return [row[0] for row in rows]


def metric_series(con, metric: str, segment_type: str) -> pd.DataFrame:
    """Daily value, numerator and denominator of ``metric`` per segment value, oldest day first."""
    return frame(
        con,
        """
        select metrics_daily.metric_date, metrics_daily.segment_value, metrics_daily.value,
               metrics_daily.numerator, metrics_daily.denominator
        from marts.metrics_daily
        where metrics_daily.metric_name = ? and metrics_daily.segment_type = ?
        order by metrics_daily.metric_date, metrics_daily.segment_value
        """,
        [metric, segment_type],
    )


def largest_segments(series: pd.DataFrame, limit: int = MAX_SEGMENTS_SHOWN) -> list[str]:
    """Segment values with the most volume (summed denominator, else summed value), largest first."""
    if series.empty:
        return []
    weight = series["denominator"].fillna(series["value"])
    totals = weight.groupby(series["segment_value"]).sum().sort_values(ascending=False, kind="stable")
    return list(totals.index[:limit])


def alert_markers(con, metric: str, segment_type: str) -> pd.DataFrame:
    """Fired alerts of ``metric`` for this segment type: the day of the window start, value, severity."""
    if not has_table(con, "marts.metric_alerts"):
        return pd.DataFrame(columns=["metric_date", "segment_value", "observed_value", "severity", "rule_name", "time_window"])
    return frame(
        con,
        """
        select cast(metric_alerts.window_start as date) as metric_date, metric_alerts.segment_value,
               metric_alerts.observed_value, metric_alerts.severity, metric_alerts.rule_name,
               metric_alerts.time_window
        from marts.metric_alerts
        where metric_alerts.metric_name = ? and metric_alerts.segment_type = ?
        order by metric_alerts.window_start
        """,
        [metric, segment_type],
    )


def _chart(series: pd.DataFrame, alerts: pd.DataFrame, unit: str | None):
    import plotly.graph_objects as go

    figure = go.Figure()
    for segment, rows in series.groupby("segment_value", sort=False):
        figure.add_trace(
            go.Scatter(
                x=rows["metric_date"],
                y=rows["value"],
                mode="lines+markers",
                name=str(segment),
                hovertext=[fmt.metric_value(value, unit) for value in rows["value"]],
                hoverinfo="x+name+text",
            )
        )
    if not alerts.empty:
        colors = {"high": "#d62728", "medium": "#ff7f0e", "low": "#bcbd22"}
        for severity, rows in alerts.groupby("severity"):
            figure.add_trace(
                go.Scatter(
                    x=rows["metric_date"],
                    y=rows["observed_value"],
                    mode="markers",
                    name=f"alert: {severity}",
                    marker={"symbol": "x", "size": 13, "color": colors.get(str(severity).lower(), "#7f7f7f")},
                    hovertext=[
                        f"{rule} ({window}) on {segment}: {fmt.metric_value(value, unit)}"
                        for rule, window, segment, value in zip(
                            rows["rule_name"], rows["time_window"], rows["segment_value"], rows["observed_value"], strict=True
                        )
                    ],
                    hoverinfo="x+text",
                )
            )
    figure.update_layout(height=440, margin={"l": 10, "r": 10, "t": 10, "b": 10}, hovermode="closest")
    if fmt.is_fraction(unit):
        figure.update_yaxes(tickformat=".0%")
    return figure


def render(con, snapshot) -> None:
    import streamlit as st

    st.title("Metrics over time")
    glossary = metric_glossary(con)
    names = [row["metric_name"] for row in glossary]
    if not names:
        st.info("No metrics in this snapshot.")
        return
    left, right = st.columns(2)
    metric = left.selectbox("Metric", names, index=names.index("completion_rate") if "completion_rate" in names else 0)
    segment_type = right.selectbox("Segment", segment_types(con))
    info = next(row for row in glossary if row["metric_name"] == metric)
    st.caption(f"{info['description']} Unit: {info['unit']}. Days are UTC conversation days.")
    series = metric_series(con, metric, segment_type)
    if series.empty:
        st.info(f"No {metric} values for segment {segment_type}.")
        return
    available = largest_segments(series, limit=len(series))
    chosen = st.multiselect("Segment values", available, default=available[:MAX_SEGMENTS_SHOWN])
    shown = series[series["segment_value"].isin(chosen)]
    alerts = alert_markers(con, metric, segment_type)
    alerts = alerts[alerts["segment_value"].isin(chosen)]
    st.plotly_chart(_chart(shown, alerts, info["unit"]), key="metric-chart")
    latest_day = shown["metric_date"].max()
    latest = shown[shown["metric_date"] == latest_day]
    st.markdown(f"**Values on {latest_day:%Y-%m-%d}**")
    st.table(
        pd.DataFrame(
            {
                "segment": latest["segment_value"],
                metric: [fmt.metric_value(value, info["unit"]) for value in latest["value"]],
                "numerator": [fmt.number(value, 0) for value in latest["numerator"]],
                "denominator": [fmt.number(value, 0) for value in latest["denominator"]],
            }
        ).set_index("segment")
    )
    if not alerts.empty:
        st.markdown(f"**{len(alerts):,} alert(s) on this metric** (✕ on the chart)")


PAGE = Page(title="Metrics", url_path="metrics", icon=":material/show_chart:", order=30, render=render)
