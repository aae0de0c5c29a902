"""Experiments: per A/B test the variants' rates with 95% intervals, lift and p-value, SRM, sample health, verdict.

Rows come from the experiment marts through ``commands/experiments.read_experiments``
(the same reading as ``convo-warehouse experiments``); rate intervals are
Wilson intervals from ``lib/experiments.py``; the verdict is the mart's. A
test is judged over its whole run, so these do not follow the sidebar's
period; below them, the key metrics per variant for the period and filters
(the metrics' experiment segments, ``lib/metric_views.py``).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from convo_warehouse.commands.experiments import read_experiments
from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib import experiments as ex
from convo_warehouse.lib import metric_views
from convo_warehouse.lib.scope import Scope

PERIOD_METRICS = ("conversations", "conversion_rate", "completion_rate", "handoff_rate", "avg_satisfaction_score")


@dataclasses.dataclass
class VariantView:
    variant: str
    is_control: bool
    sessions: int
    conversions: int
    conversion_rate: float | None
    rate_ci: tuple[float | None, float | None]
    absolute_lift: float | None
    lift_ci: tuple[float | None, float | None]
    p_value: float | None
    is_significant: bool | None


@dataclasses.dataclass
class TestView:
    test_name: str
    variants: list[VariantView]
    srm_p_value: float | None
    srm_detected: bool | None
    enough_sample: bool | None
    has_enough_traffic: bool | None
    exposed: int | None
    contamination_rate: float | None
    assignment_mismatch_rate: float | None
    verdict: str


def experiment_views(con) -> list[TestView]:
    """Every test in the experiments seed, as shown."""
    views = []
    for test in read_experiments(con):
        results = test["results"]
        overall = next((row for row in test["health"] if row["segment_type"] == "all"), None)
        variants = [
            VariantView(
                variant=row["variant"],
                is_control=bool(row["is_control"]),
                sessions=row["sessions"],
                conversions=row["conversions"],
                conversion_rate=row["conversion_rate"],
                rate_ci=ex.wilson_interval(row["conversions"], row["sessions"]),
                absolute_lift=row["absolute_lift"],
                lift_ci=(row["ci_low"], row["ci_high"]),
                p_value=row["p_value"],
                is_significant=row["is_significant"],
            )
            for row in results
        ]
        first = results[0] if results else {}
        views.append(
            TestView(
                test_name=test["test_name"],
                variants=variants,
                srm_p_value=first.get("srm_p_value"),
                srm_detected=first.get("srm_detected"),
                enough_sample=first.get("enough_sample"),
                has_enough_traffic=first.get("has_enough_traffic"),
                exposed=overall["exposed_conversations"] if overall else None,
                contamination_rate=overall["contamination_rate"] if overall else None,
                assignment_mismatch_rate=overall["assignment_mismatch_rate"] if overall else None,
                verdict=(overall or {}).get("verdict") or "n/a",
            )
        )
    return views


def variant_metrics(con, test_name: str, scope: Scope) -> pd.DataFrame:
    """PERIOD_METRICS per variant of ``test_name`` over the scope: variant, metric_name, numerator,
    denominator, value (the metrics' experiment segment: contaminated conversations left out)."""
    parts = []
    for name in PERIOD_METRICS:
        totals = metric_views.metric_series(con, name, scope, f"experiment:{test_name}", "total")
        parts.append(totals.drop(columns="period").assign(metric_name=name))
    if not parts:
        return pd.DataFrame(columns=["segment_value", "numerator", "denominator", "value", "metric_name"])
    return pd.concat(parts, ignore_index=True).rename(columns={"segment_value": "variant"})


def _rates_chart(view: TestView):
    import plotly.graph_objects as go

    rates = [variant.conversion_rate or 0.0 for variant in view.variants]
    figure = go.Figure(
        go.Bar(
            x=[variant.variant for variant in view.variants],
            y=rates,
            text=[fmt.percent(variant.conversion_rate) for variant in view.variants],
            textposition="outside",
            marker={"color": ["#7f7f7f" if variant.is_control else "#1f77b4" for variant in view.variants]},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [(variant.rate_ci[1] or rate) - rate for variant, rate in zip(view.variants, rates, strict=True)],
                "arrayminus": [rate - (variant.rate_ci[0] or rate) for variant, rate in zip(view.variants, rates, strict=True)],
            },
        )
    )
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis={"tickformat": ".0%"},
                         title={"text": "Conversion rate with 95% interval (grey: control)", "font": {"size": 13}})
    return figure


def _variant_table(view: TestView):
    return pd.DataFrame(
        {
            "variant": [v.variant + (" (control)" if v.is_control else "") for v in view.variants],
            "sessions": [fmt.count(v.sessions) for v in view.variants],
            "conversions": [fmt.count(v.conversions) for v in view.variants],
            "rate": [fmt.percent(v.conversion_rate) for v in view.variants],
            "95% CI of rate": [f"{fmt.percent(v.rate_ci[0])} – {fmt.percent(v.rate_ci[1])}" for v in view.variants],
            "lift": ["" if v.is_control else fmt.points(v.absolute_lift) for v in view.variants],
            "95% CI of lift": [
                "" if v.is_control else f"{fmt.points(v.lift_ci[0])} – {fmt.points(v.lift_ci[1])}" for v in view.variants
            ],
            "p-value": ["" if v.is_control else fmt.format_p(v.p_value) for v in view.variants],
            "significant": ["" if v.is_control else ("yes" if v.is_significant else "no") for v in view.variants],
        }
    )


def render(context) -> None:
    import streamlit as st

    con, scope = context.con, context.scope
    st.title("Experiments")
    st.caption("Results, SRM and verdicts cover each test's whole run (every exposure), whatever the period; "
               f"the table under each test follows the period and filters: **{context.choice.period_words}**; "
               f"{fmt.markdown_safe(scope.describe(period=False))}.")
    views = experiment_views(con)
    if not views:
        st.info("No tests in the experiments seed.")
        return
    for view in views:
        with st.container(border=True):
            st.subheader(view.test_name)
            healthy = not view.srm_detected and view.enough_sample
            (st.success if healthy else st.warning)(f"Verdict: {view.verdict}")
            left, right = st.columns([2, 3])
            left.plotly_chart(_rates_chart(view), key=f"rates-{view.test_name}")
            with right:
                tables.show(_variant_table(view),
                            pd.DataFrame([dataclasses.asdict(variant) for variant in view.variants]),
                            title=f"{view.test_name} results", key=f"results-{view.test_name}")
            a, b, c, d = right.columns(4)
            a.metric("SRM p-value", fmt.format_p(view.srm_p_value),
                     help="Chi-square of sessions across variants against the seed's weights; mismatch below 0.001.")
            b.metric("Split", "mismatch" if view.srm_detected else "ok")
            c.metric("Sample", "enough" if view.enough_sample else "too small",
                     help="Every variant needs at least 500 sessions and 100 conversions.")
            d.metric("Contaminated", fmt.percent(view.contamination_rate),
                     help=f"Of {fmt.count(view.exposed)} exposed conversations, the share that saw several variants "
                     "(excluded from results).")
            period = variant_metrics(con, view.test_name, scope)
            st.markdown(f"**Key metrics per variant, {context.choice.period_words}** (period and filters applied)")
            if period.empty:
                st.info("No exposed conversation in this period and filters.")
                continue
            glossary = metric_views.glossary(con)
            wide = period.pivot(index="variant", columns="metric_name", values="value").reindex(
                columns=[name for name in PERIOD_METRICS if name in set(period["metric_name"])])
            shown = pd.DataFrame({"variant": wide.index})
            for name in wide.columns:
                shown[name] = [fmt.metric_value(value, glossary[name].unit) for value in wide[name]]
            tables.show(shown, period, title=f"{view.test_name} metrics in the period",
                        key=f"period-{view.test_name}")


PAGE = Page(title="Experiments", url_path="experiments", icon=":material/science:", order=40, render=render)
