"""Metrics over time by segment, for the period and filters: pick a metric and a segment type; fired alerts are marked."""

from __future__ import annotations

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.data import frame, has_table
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib import metric_views
from convo_warehouse.lib.scope import Scope

MAX_SEGMENTS_SHOWN = 8


def segment_types(con) -> list[str]:
    """Segment types of the long metric tables: all, the attributes, one per experiment."""
    tests = [row[0] for row in con.execute(
        "select distinct test_name from marts.ab_test_exposures order by 1").fetchall()]
    return ["all", *metric_views.ATTRIBUTE_SEGMENTS, *(f"experiment:{test}" for test in tests)]


def metric_series(con, metric: str, segment_type: str, scope: Scope) -> pd.DataFrame:
    """Daily value, numerator and denominator of ``metric`` per segment value over the scope, oldest day first."""
    return metric_views.metric_series(con, metric, scope, segment_type).rename(columns={"period": "metric_date"})


def largest_segments(series: pd.DataFrame, limit: int = MAX_SEGMENTS_SHOWN) -> list[str]:
    """Segment values with the most volume (summed denominator, else summed value), largest first."""
    if series.empty:
        return []
    weight = series["denominator"].fillna(series["value"])
    totals = weight.groupby(series["segment_value"]).sum().sort_values(ascending=False, kind="stable")
    return list(totals.index[:limit])


def alert_markers(con, metric: str, segment_type: str, scope: Scope) -> pd.DataFrame:
    """Fired alerts of ``metric`` for this segment type whose window starts in the period."""
    empty = pd.DataFrame(columns=["metric_date", "segment_value", "observed_value", "severity", "rule_name",
                                  "time_window"])
    if not has_table(con, "marts.metric_alerts"):
        return empty
    return frame(
        con,
        """
        select cast(metric_alerts.window_start as date) as metric_date, metric_alerts.segment_value,
               metric_alerts.observed_value, metric_alerts.severity, metric_alerts.rule_name,
               metric_alerts.time_window
        from marts.metric_alerts
        where metric_alerts.metric_name = ? and metric_alerts.segment_type = ?
            and (cast(? as date) is null or cast(metric_alerts.window_start as date) >= cast(? as date))
            and (cast(? as date) is null or cast(metric_alerts.window_start as date) <= cast(? as date))
        order by metric_alerts.window_start
        """,
        [metric, segment_type, scope.start, scope.start, scope.end, scope.end],
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


def render(context) -> None:
    import streamlit as st

    con, scope = context.con, context.scope
    st.title("Metrics over time")
    glossary = metric_views.glossary(con)
    names = list(glossary)
    if not names:
        st.info("No metrics in this snapshot.")
        return
    left, right = st.columns(2)
    metric = left.selectbox("Metric", names, index=names.index("completion_rate") if "completion_rate" in names else 0,
                            key="metric", bind="query-params")
    segment_type = right.selectbox("Segment", segment_types(con), key="segment", bind="query-params")
    info = glossary[metric]
    st.caption(f"{info.description} Unit: {info.unit}. **{context.choice.period_words}**; {fmt.markdown_safe(scope.describe(period=False))}. "
               "Days are UTC conversation days; a day without a denominator has no point.")
    series = metric_series(con, metric, segment_type, scope)
    if series.empty:
        st.info(f"No {metric} values for segment {segment_type} in this period and filters.")
        return
    available = largest_segments(series, limit=len(series))
    chosen = st.multiselect("Segment values", available, default=available[:MAX_SEGMENTS_SHOWN])
    shown = series[series["segment_value"].isin(chosen)]
    alerts = alert_markers(con, metric, segment_type, scope)
    alerts = alerts[alerts["segment_value"].isin(chosen)]
    st.plotly_chart(_chart(shown, alerts, info.unit), key="metric-chart")
    totals = metric_views.metric_series(con, metric, scope, segment_type, "total")
    totals = totals[totals["segment_value"].isin(chosen)]
    st.markdown("**Over the whole period**")
    tables.show(
        pd.DataFrame({
            "segment": totals["segment_value"],
            metric: [fmt.metric_value(value, info.unit) for value in totals["value"]],
            "numerator": [fmt.number(value, 0 if fmt.is_fraction(info.unit) else 2) for value in totals["numerator"]],
            "denominator": [fmt.number(value, 0) for value in totals["denominator"]],
        }),
        totals.drop(columns="period").assign(metric_name=metric, start=scope.start, end=scope.end),
        title=f"{metric} by {segment_type}",
        key="metric-totals",
    )
    with st.expander("Every day"):
        tables.show(
            pd.DataFrame({
                "day": [f"{day:%Y-%m-%d}" for day in shown["metric_date"]],
                "segment": shown["segment_value"],
                metric: [fmt.metric_value(value, info.unit) for value in shown["value"]],
                "numerator": [fmt.number(value, 2) for value in shown["numerator"]],
                "denominator": [fmt.number(value, 0) for value in shown["denominator"]],
            }),
            shown.assign(metric_name=metric),
            title=f"{metric} by {segment_type} per day",
            key="metric-daily",
        )
    if not alerts.empty:
        st.markdown(f"**{len(alerts):,} alert(s) on this metric in the period** (✕ on the chart)")
    if info.is_proportion and segment_type != "all":
        _segment_comparison(con, metric, segment_type)


def comparison_table(rows: pd.DataFrame) -> pd.DataFrame:
    """segment_comparison rows as people read them: rates and intervals in %, differences in points."""
    return pd.DataFrame({
        "segment": rows["segment_value"],
        "rate": [fmt.percent(value) for value in rows["rate"]],
        "95% interval": [f"{fmt.percent(low)} to {fmt.percent(high)}"
                         for low, high in zip(rows["ci_low"], rows["ci_high"], strict=True)],
        "vs the rest": [fmt.points(value) for value in rows["difference_from_rest"]],
        "p (adjusted)": [fmt.number(value, 4) for value in rows["p_value"]],
        "significant": ["-" if pd.isna(value) else "yes" if value else "no" for value in rows["is_significant"]],
        "best": ["best" if value else "" for value in rows["is_best"]],
        "sample": [fmt.number(value, 0) for value in rows["sample_size"]],
    })


def _segment_comparison(con, metric: str, segment_type: str) -> None:
    """The metric's values against the rest of the segment type (marts.segment_comparison: its period,
    the whole history by default, and no filters)."""
    import streamlit as st

    rows = metric_views.segment_comparison(con, metric, segment_type)
    if rows.empty:
        return
    period = f"{rows['period_start'].iloc[0]:%Y-%m-%d} to {rows['period_end'].iloc[0]:%Y-%m-%d}"
    better = "lowest" if rows["better_direction"].iloc[0] == "lower" else "highest"
    st.markdown(f"**Each value against the rest of {segment_type}** ({period}, every conversation; "
                f"p-values adjusted for the {len(rows)} values by Benjamini-Hochberg; best = the {better} rate "
                "among values with enough sample)")
    tables.show(comparison_table(rows), rows, title=f"{metric} by {segment_type} against the rest",
                key="metric-comparison")


PAGE = Page(title="Metrics", url_path="metrics", icon=":material/show_chart:", order=30, render=render)
