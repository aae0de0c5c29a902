"""Statistics for A/B tests: pure functions, no Dagster, no warehouse.

The dbt Python models in ``models/intermediate/experiments/`` and the
``convo-warehouse experiments`` command both call these, so the numbers in
the marts and in the terminal come from one implementation.

Formulas follow the mart contract (``ab_test_results``):

- two-proportion z-test with the pooled rate, two-sided p-value;
- 95% interval of the difference with the unpooled standard error and
  z = 1.959964;
- sample ratio mismatch (SRM): chi-square goodness of fit of sessions against
  the intended weights (equal if none), df = variants - 1.

Beyond the contract: Welch's t-test for means, Holm's step-down adjustment,
the Wilson interval of one rate, and an always-valid (sequential) interval of
a difference from the normal-mixture sequential probability ratio test.

Undefined values are ``None`` (a rate with no sessions, a z-score with a zero
standard error, ...), never NaN, so callers can write them as SQL nulls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

#: z for a two-sided 95% interval, as the contract writes it.
Z_95 = 1.959964
#: p-value under which a difference is called significant.
ALPHA = 0.05
#: srm_p_value under which the split is called broken.
SRM_ALPHA = 0.001
#: per variant, for ``enough_sample``.
MIN_SESSIONS = 500
MIN_CONVERSIONS = 100
#: fewer total sessions than this many per variant is "not enough traffic".
MIN_SESSIONS_PER_VARIANT_FOR_TRAFFIC = 8
#: share of exposed conversations that saw several variants (or were
#: assigned against the rule) above which a test is called unhealthy.
MAX_CONTAMINATION_RATE = 0.03
MAX_MISMATCH_RATE = 0.01
#: standard deviation of the normal mixing distribution of the sequential
#: test, on the scale of a difference of rates: effects of a few points are
#: what conversation tests look for.
SEQUENTIAL_TAU = 0.02


def rate(successes: int, trials: int) -> float | None:
    """successes / trials, or None without trials."""
    return successes / trials if trials else None


@dataclass(frozen=True)
class ProportionComparison:
    """A variant's rate against the control's (p1 = control, p2 = variant)."""

    p1: float | None
    p2: float | None
    absolute_lift: float | None
    relative_lift: float | None
    z_score: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    is_significant: bool | None


def compare_proportions(x1: int, n1: int, x2: int, n2: int, z_crit: float = Z_95) -> ProportionComparison:
    """Pooled two-proportion z-test and unpooled interval of p2 - p1.

    x1/n1 is the control, x2/n2 the variant. With no sessions on either side
    nothing is defined (all None). A pooled standard error of 0 (both rates
    0, or both 1) gives a None z-score and p-value, hence a None
    ``is_significant``; the interval is then the single point p2 - p1.
    p1 = 0 gives a None relative lift.
    """
    p1, p2 = rate(x1, n1), rate(x2, n2)
    if p1 is None or p2 is None:
        return ProportionComparison(p1, p2, None, None, None, None, None, None, None)
    lift = p2 - p1
    relative = lift / p1 if p1 != 0 else None
    pooled = (x1 + x2) / (n1 + n2)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se_pooled == 0:
        z = p_value = None
    else:
        z = lift / se_pooled
        p_value = two_sided_p(z)
    se_unpooled = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    ci_low, ci_high = lift - z_crit * se_unpooled, lift + z_crit * se_unpooled
    significant = None if p_value is None else p_value < ALPHA
    return ProportionComparison(p1, p2, lift, relative, z, p_value, ci_low, ci_high, significant)


def two_sided_p(z: float) -> float:
    """2 (1 - Phi(|z|)), computed through the survival function (no cancellation)."""
    return float(2 * stats.norm.sf(abs(z)))


@dataclass(frozen=True)
class SrmResult:
    chi_square: float | None
    p_value: float | None
    detected: bool | None


def sample_ratio_mismatch(
    sessions: Sequence[int], weights: Sequence[float | None] | None = None, alpha: float = SRM_ALPHA
) -> SrmResult:
    """Chi-square goodness of fit of ``sessions`` against ``weights``.

    Weights are the intended shares, in any scale (0.5/0.5 or 50/50); when
    any is missing the split is taken as equal. df = len(sessions) - 1.
    Undefined (all None) with fewer than two variants or no sessions at all.
    A variant with weight 0 that has sessions gives chi-square inf, p = 0.
    """
    k = len(sessions)
    total = sum(sessions)
    if k < 2 or total == 0:
        return SrmResult(None, None, None)
    if weights is None or any(w is None or (isinstance(w, float) and math.isnan(w)) for w in weights):
        shares = [1 / k] * k
    else:
        weight_sum = float(sum(weights))
        if weight_sum <= 0:
            return SrmResult(None, None, None)
        shares = [w / weight_sum for w in weights]
    expected = [total * share for share in shares]
    if any(e == 0 for e in expected):
        chi = sum(
            (o - e) ** 2 / e if e else (math.inf if o else 0.0) for o, e in zip(sessions, expected, strict=True)
        )
        p_value = float(stats.chi2.sf(chi, k - 1))
    else:
        result = stats.chisquare(f_obs=list(sessions), f_exp=expected)
        chi, p_value = float(result.statistic), float(result.pvalue)
    return SrmResult(chi, p_value, p_value < alpha)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the input order.

    Sort the m defined p-values ascending; the i-th (0-based) becomes
    max over j <= i of min(1, (m - j) p_(j)). None stays None and does not
    count in m.
    """
    defined = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(defined)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(defined):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class MeanComparison:
    """A variant's mean against the control's, by Welch's t-test."""

    difference: float | None
    relative_difference: float | None
    t_statistic: float | None
    degrees_of_freedom: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None


def compare_means(
    mean1: float | None,
    var1: float | None,
    n1: int,
    mean2: float | None,
    var2: float | None,
    n2: int,
    alpha: float = ALPHA,
) -> MeanComparison:
    """Welch's unequal-variance t-test of mean2 - mean1 from summary statistics.

    ``var`` is the sample variance (n - 1 denominator). Needs at least two
    observations per side; a zero standard error leaves the test undefined
    (the difference is still reported).
    """
    if mean1 is None or mean2 is None or n1 < 2 or n2 < 2 or var1 is None or var2 is None:
        difference = None if mean1 is None or mean2 is None else mean2 - mean1
        relative = difference / mean1 if difference is not None and mean1 else None
        return MeanComparison(difference, relative, None, None, None, None, None)
    difference = mean2 - mean1
    relative = difference / mean1 if mean1 else None
    se_squared = var1 / n1 + var2 / n2
    if se_squared <= 0:
        return MeanComparison(difference, relative, None, None, None, difference, difference)
    se = math.sqrt(se_squared)
    df = se_squared**2 / ((var1 / n1) ** 2 / (n1 - 1) + (var2 / n2) ** 2 / (n2 - 1))
    t = difference / se
    p_value = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return MeanComparison(difference, relative, t, df, p_value, difference - half, difference + half)


def wilson_interval(successes: int, trials: int, z_crit: float = Z_95) -> tuple[float | None, float | None]:
    """Wilson score interval of one rate (better than the Wald one near 0 or 1), clipped to 0..1.

    The SQL twin is the ``wilson_interval_bound`` macro (segment_comparison,
    funnel_summary); tests/warehouse/test_statistics_sql_equals_python.py proves they agree.
    """
    if not trials:
        return None, None
    p = successes / trials
    denominator = 1 + z_crit**2 / trials
    centre = (p + z_crit**2 / (2 * trials)) / denominator
    half = z_crit * math.sqrt(p * (1 - p) / trials + z_crit**2 / (4 * trials**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def always_valid_interval(
    estimate: float | None, variance: float | None, alpha: float = ALPHA, tau: float = SEQUENTIAL_TAU
) -> tuple[float | None, float | None]:
    """Always-valid confidence interval of a difference (normal-mixture SPRT).

    With the estimate's variance V and a N(0, tau^2) mixture over the true
    difference, the mixture likelihood ratio against theta is
    sqrt(V / (V + tau^2)) exp(tau^2 (estimate - theta)^2 / (2 V (V + tau^2))).
    The interval keeps every theta for which it stays below 1 / alpha:

        estimate +- sqrt(V (V + tau^2) / tau^2 * (2 log(1 / alpha) + log((V + tau^2) / V)))

    (Johari et al., "Always valid inference", 2017; Howard et al., 2021). It
    holds simultaneously at every sample size, so a test may be looked at
    daily and stopped when it excludes 0 without inflating false positives.
    It is wider than the fixed-horizon interval: that is the price.
    """
    if estimate is None or variance is None or variance <= 0:
        return None, None
    tau_squared = tau**2
    half = math.sqrt(
        variance * (variance + tau_squared) / tau_squared
        * (2 * math.log(1 / alpha) + math.log((variance + tau_squared) / variance))
    )
    return estimate - half, estimate + half


def proportion_difference_variance(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Unpooled variance of p2 - p1 (the square of the contract's interval se)."""
    if not n1 or not n2:
        return None
    p1, p2 = x1 / n1, x2 / n2
    return p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2


def has_enough_sample(
    sessions: Sequence[int],
    conversions: Sequence[int],
    min_sessions: int = MIN_SESSIONS,
    min_conversions: int = MIN_CONVERSIONS,
) -> bool:
    """Every variant has at least ``min_sessions`` sessions and ``min_conversions`` conversions."""
    return all(s >= min_sessions for s in sessions) and all(c >= min_conversions for c in conversions)


def has_enough_traffic(total_sessions: int, variants: int) -> bool:
    """At least MIN_SESSIONS_PER_VARIANT_FOR_TRAFFIC sessions per variant in total; below that nothing is worth reading."""
    return total_sessions >= MIN_SESSIONS_PER_VARIANT_FOR_TRAFFIC * variants


def health_problems(
    *,
    srm_detected: bool | None,
    srm_p_value: float | None,
    contamination_rate: float | None,
    mismatch_rate: float | None,
    enough_traffic: bool,
) -> list[str]:
    """What is wrong with the test itself (not with its variants), worst first."""
    problems = []
    if not enough_traffic:
        problems.append("not enough traffic")
    if srm_detected:
        problems.append(f"sample ratio mismatch (p={format_p(srm_p_value)})")
    if contamination_rate is not None and contamination_rate > MAX_CONTAMINATION_RATE:
        problems.append(f"{contamination_rate:.1%} of conversations saw several variants")
    if mismatch_rate is not None and mismatch_rate > MAX_MISMATCH_RATE:
        problems.append(f"{mismatch_rate:.1%} of exposures disagree with the assignment rule")
    return problems


def format_p(p_value: float | None) -> str:
    if p_value is None:
        return "n/a"
    if p_value < 0.001:
        return "<0.001"
    return f"{p_value:.3f}"


def verdict(variant_rows: Sequence[dict], problems: Sequence[str], enough_sample: bool) -> str:
    """One line: the best non-control variant's lift and significance; then health.

    ``variant_rows`` are non-control rows with ``variant``, ``absolute_lift``,
    ``p_value``, ``is_significant``. The variant shown is the significant one
    with the largest lift if any, else the one with the smallest p-value.
    Example: "variant casual +2.1 pts, p=0.003, significant; healthy".
    """
    if "not enough traffic" in problems:
        others = [problem for problem in problems if problem != "not enough traffic"]
        return "; ".join(["not enough traffic to compare variants", *others])
    health = "; ".join(problems) if problems else "healthy"
    scored = [row for row in variant_rows if row.get("absolute_lift") is not None]
    if not scored:
        return f"no comparison possible; {health}"
    significant = [row for row in scored if row.get("is_significant")]
    if significant:
        best = max(significant, key=lambda row: row["absolute_lift"])
    else:
        best = min(scored, key=lambda row: (row["p_value"] is None, row["p_value"] or 1.0))
    if best.get("is_significant"):
        call = "significant"
    elif best.get("p_value") is None:
        call = "no test possible"
    else:
        call = "not significant"
    if not enough_sample:
        call += f" (sample below {MIN_SESSIONS:,} sessions / {MIN_CONVERSIONS:,} conversions per variant)"
    lift_pts = 100 * best["absolute_lift"]
    return f"variant {best['variant']} {lift_pts:+.1f} pts, p={format_p(best['p_value'])}, {call}; {health}"


def records_to_frame(rows: Sequence[dict], schema: dict[str, str]):
    """A pandas frame of ``rows`` with nullable dtypes, so None lands as SQL null.

    ``schema`` maps column -> one of "string", "Int64", "Float64", "boolean".
    Used by the dbt Python models; every column of ``schema`` is present even
    when ``rows`` is empty.
    """
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(schema))
    return frame.astype(schema)


def score_conversion_test(variants: Sequence[dict]) -> list[dict]:
    """The ``ab_test_results`` rows of one test from its per-variant counts.

    Each input dict has ``test_name``, ``variant``, ``variant_order``,
    ``is_control``, ``weight`` (None if unset), ``sessions``, ``conversions``.
    Output rows, in variant_order, carry the contract's columns plus
    ``srm_chi_square``, ``total_sessions``, ``has_enough_traffic`` and the
    always-valid interval (``sequential_ci_low``/``_high``). The control row's
    comparison columns are None; so are every row's when the test has no
    control.
    """
    ordered = sorted(variants, key=lambda v: (v["variant_order"], v["variant"]))
    sessions = [int(v["sessions"]) for v in ordered]
    conversions = [int(v["conversions"]) for v in ordered]
    srm = sample_ratio_mismatch(sessions, [v.get("weight") for v in ordered])
    enough_sample = has_enough_sample(sessions, conversions)
    total = sum(sessions)
    enough_traffic = has_enough_traffic(total, len(ordered))
    control = next((v for v in ordered if v["is_control"]), None)
    rows = []
    for v in ordered:
        n2, x2 = int(v["sessions"]), int(v["conversions"])
        row = {
            "test_name": v["test_name"],
            "variant": v["variant"],
            "variant_order": int(v["variant_order"]),
            "is_control": bool(v["is_control"]),
            "weight": v.get("weight"),
            "sessions": n2,
            "conversions": x2,
            "conversion_rate": rate(x2, n2),
            "absolute_lift": None,
            "relative_lift": None,
            "z_score": None,
            "p_value": None,
            "ci_low": None,
            "ci_high": None,
            "is_significant": None,
            "srm_chi_square": srm.chi_square,
            "srm_p_value": srm.p_value,
            "srm_detected": srm.detected,
            "enough_sample": enough_sample,
            "total_sessions": total,
            "has_enough_traffic": enough_traffic,
            "sequential_ci_low": None,
            "sequential_ci_high": None,
        }
        if not v["is_control"] and control is not None:
            n1, x1 = int(control["sessions"]), int(control["conversions"])
            comparison = compare_proportions(x1, n1, x2, n2)
            low, high = always_valid_interval(
                comparison.absolute_lift, proportion_difference_variance(x1, n1, x2, n2)
            )
            row.update(
                absolute_lift=comparison.absolute_lift,
                relative_lift=comparison.relative_lift,
                z_score=comparison.z_score,
                p_value=comparison.p_value,
                ci_low=comparison.ci_low,
                ci_high=comparison.ci_high,
                is_significant=comparison.is_significant,
                sequential_ci_low=low,
                sequential_ci_high=high,
            )
        rows.append(row)
    return rows


#: The per-variant metrics of ``ab_test_metrics``: name -> (type, role, higher
#: is better). A test's seed ``primary_metric`` is promoted to role "primary".
METRICS: dict[str, tuple[str, str, bool]] = {
    "conversion_rate": ("rate", "secondary", True),
    "completion_rate": ("rate", "secondary", True),
    "satisfaction_score": ("mean", "secondary", True),
    "quality_score": ("mean", "secondary", True),
    "handoff_rate": ("rate", "guardrail", False),
    "first_response_ms": ("mean", "guardrail", False),
}


#: The mean metrics and the prefix of their columns in a variant's row
#: (``<prefix>_n``, ``<prefix>_mean``, ``<prefix>_variance``).
MEAN_METRIC_PREFIXES: dict[str, str] = {
    "satisfaction_score": "satisfaction",
    "quality_score": "quality",
    "first_response_ms": "first_response",
}


def _metric_summary(variant: dict, metric: str) -> dict:
    """n and value (plus successes or variance) of one metric of one variant."""
    sessions = int(variant["sessions"])
    if metric == "conversion_rate":
        return {"n": sessions, "x": int(variant["conversions"])}
    if metric == "completion_rate":
        return {"n": sessions, "x": int(variant["completions"])}
    if metric == "handoff_rate":
        return {"n": sessions, "x": int(variant["handoffs"])}
    prefix = MEAN_METRIC_PREFIXES[metric]
    return {
        "n": int(variant[f"{prefix}_n"]),
        "mean": _none_if_nan(variant[f"{prefix}_mean"]),
        "variance": _none_if_nan(variant[f"{prefix}_variance"]),
    }


def _none_if_nan(value):
    if value is None:
        return None
    try:
        return None if math.isnan(value) else float(value)
    except TypeError:
        return None


def score_metrics(variants: Sequence[dict]) -> list[dict]:
    """The ``ab_test_metrics`` rows of one test: every variant x metric.

    Rates are compared with the pooled z-test (as conversion is), means with
    Welch's t-test. ``p_value_adjusted`` is Holm's adjustment over the test's
    non-guardrail metrics x non-control variants; primary and secondary
    metrics are significant when it is below ALPHA. Guardrails are not adjusted
    (a guardrail is a tripwire: more false alarms are the safe side) and are
    breached when the unadjusted p-value is below ALPHA in the harmful
    direction.
    """
    ordered = sorted(variants, key=lambda v: (v["variant_order"], v["variant"]))
    control = next((v for v in ordered if v["is_control"]), None)
    primary = next((v.get("primary_metric") for v in ordered if v.get("primary_metric")), "conversion_rate")
    rows = []
    for v in ordered:
        for metric, (metric_type, role, higher_is_better) in METRICS.items():
            role = "primary" if metric == primary else role
            summary = _metric_summary(v, metric)
            value = rate(summary["x"], summary["n"]) if metric_type == "rate" else summary["mean"]
            row = {
                "test_name": v["test_name"],
                "variant": v["variant"],
                "is_control": bool(v["is_control"]),
                "metric_name": metric,
                "metric_role": role,
                "metric_type": metric_type,
                "higher_is_better": higher_is_better,
                "sample_size": summary["n"],
                "value": value,
                "control_value": None,
                "difference": None,
                "relative_difference": None,
                "test_statistic": None,
                "p_value": None,
                "p_value_adjusted": None,
                "ci_low": None,
                "ci_high": None,
                "sequential_ci_low": None,
                "sequential_ci_high": None,
                "is_significant": None,
                "guardrail_breached": None,
            }
            if not v["is_control"] and control is not None:
                base = _metric_summary(control, metric)
                if metric_type == "rate":
                    comparison = compare_proportions(base["x"], base["n"], summary["x"], summary["n"])
                    variance = proportion_difference_variance(base["x"], base["n"], summary["x"], summary["n"])
                    row.update(
                        control_value=comparison.p1,
                        difference=comparison.absolute_lift,
                        relative_difference=comparison.relative_lift,
                        test_statistic=comparison.z_score,
                        p_value=comparison.p_value,
                        ci_low=comparison.ci_low,
                        ci_high=comparison.ci_high,
                    )
                    # tau is on the scale of a difference of rates: means get no sequential interval
                    low, high = always_valid_interval(comparison.absolute_lift, variance)
                    row.update(sequential_ci_low=low, sequential_ci_high=high)
                else:
                    comparison = compare_means(
                        base["mean"], base["variance"], base["n"], summary["mean"], summary["variance"], summary["n"]
                    )
                    row.update(
                        control_value=base["mean"],
                        difference=comparison.difference,
                        relative_difference=comparison.relative_difference,
                        test_statistic=comparison.t_statistic,
                        p_value=comparison.p_value,
                        ci_low=comparison.ci_low,
                        ci_high=comparison.ci_high,
                    )
            rows.append(row)
    family = [i for i, row in enumerate(rows) if row["metric_role"] != "guardrail" and not row["is_control"]]
    adjusted = holm([rows[i]["p_value"] for i in family])
    for i, p_adjusted in zip(family, adjusted, strict=True):
        rows[i]["p_value_adjusted"] = p_adjusted
        rows[i]["is_significant"] = None if p_adjusted is None else p_adjusted < ALPHA
    for row in rows:
        if row["metric_role"] == "guardrail" and not row["is_control"] and row["p_value"] is not None:
            harmful = row["difference"] < 0 if row["higher_is_better"] else row["difference"] > 0
            row["is_significant"] = row["p_value"] < ALPHA
            row["guardrail_breached"] = row["is_significant"] and harmful
    return rows
