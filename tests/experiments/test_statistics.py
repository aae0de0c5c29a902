"""The A/B statistics helpers against public reference numbers and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from convo_warehouse.lib import experiments as ex


def test_pooled_z_test_matches_public_reference():
    # Control 14/28 vs variant 16/30: pooled z = 0.2539, two-sided p = 0.7996.
    result = ex.compare_proportions(14, 28, 16, 30)
    assert result.z_score == pytest.approx(0.2539, abs=5e-5)
    assert result.p_value == pytest.approx(0.7996, abs=5e-5)
    assert result.p1 == pytest.approx(0.5)
    assert result.p2 == pytest.approx(16 / 30)
    assert result.absolute_lift == pytest.approx(16 / 30 - 0.5)
    assert result.relative_lift == pytest.approx((16 / 30 - 0.5) / 0.5)
    assert result.is_significant is False


def test_interval_uses_unpooled_standard_error():
    result = ex.compare_proportions(14, 28, 16, 30)
    se = math.sqrt(0.5 * 0.5 / 28 + (16 / 30) * (14 / 30) / 30)
    assert result.ci_low == pytest.approx(16 / 30 - 0.5 - 1.959964 * se, rel=1e-12)
    assert result.ci_high == pytest.approx(16 / 30 - 0.5 + 1.959964 * se, rel=1e-12)


def test_significant_difference():
    # 100/1000 vs 150/1000: z = 0.05 / sqrt(0.125 * 0.875 * 0.002) = 3.3806
    result = ex.compare_proportions(100, 1000, 150, 1000)
    assert result.z_score == pytest.approx(3.3806, abs=1e-4)
    assert result.p_value == pytest.approx(0.000723, abs=2e-6)
    assert result.is_significant is True


def test_zero_standard_error_and_zero_control_rate():
    # Both rates 0: pooled se 0 -> no z, no p; p1 = 0 -> no relative lift.
    result = ex.compare_proportions(0, 50, 0, 60)
    assert result.absolute_lift == 0
    assert result.z_score is None and result.p_value is None and result.is_significant is None
    assert result.relative_lift is None
    assert result.ci_low == 0 and result.ci_high == 0
    # p1 = 0 but the variant converts: z defined, relative lift still None.
    result = ex.compare_proportions(0, 50, 5, 60)
    assert result.relative_lift is None
    assert result.z_score is not None and result.z_score > 0


def test_no_sessions_leaves_everything_undefined():
    result = ex.compare_proportions(0, 0, 5, 60)
    assert result.p1 is None
    assert result.absolute_lift is None and result.z_score is None and result.ci_low is None


def test_srm_matches_public_reference():
    # Sessions 1000 vs 1100 at 50/50: chi-square 4.762, p = 0.0291.
    result = ex.sample_ratio_mismatch([1000, 1100], [0.5, 0.5])
    assert result.chi_square == pytest.approx(4.762, abs=5e-4)
    assert result.p_value == pytest.approx(0.0291, abs=5e-5)
    assert result.detected is False


def test_srm_weights_default_to_equal_and_any_scale():
    assert ex.sample_ratio_mismatch([1000, 1100]) == ex.sample_ratio_mismatch([1000, 1100], [None, None])
    scaled = ex.sample_ratio_mismatch([400, 300, 300], [40, 30, 30])
    assert scaled.chi_square == pytest.approx(0.0)
    # A uniform rule measured against 40/30/30 weights is the misconfiguration SRM catches.
    uniform = ex.sample_ratio_mismatch([3334, 3333, 3333], [0.4, 0.3, 0.3])
    # expected 4000/3000/3000: (666^2/4000 + 333^2/3000 * 2)
    assert uniform.chi_square == pytest.approx(666**2 / 4000 + 2 * 333**2 / 3000)
    assert uniform.detected is True
    assert uniform.p_value == pytest.approx(stats.chi2.sf(uniform.chi_square, 2))


def test_srm_undefined_without_sessions_or_with_one_variant():
    assert ex.sample_ratio_mismatch([0, 0]).p_value is None
    assert ex.sample_ratio_mismatch([10]).p_value is None


def test_holm_hand_worked():
    # m = 4. Sorted: 0.005 -> 4 x 0.005 = 0.02; 0.01 -> 3 x 0.01 = 0.03;
    # 0.03 -> 2 x 0.03 = 0.06; 0.04 -> 1 x 0.04 = 0.04, raised to 0.06 (monotone).
    adjusted = ex.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_none():
    adjusted = ex.holm([0.5, None, 0.6])
    # m = 2: 0.5 -> 1.0 (capped from 1.0), 0.6 -> max(1.0, 0.6) = 1.0
    assert adjusted == [1.0, None, 1.0]
    assert ex.holm([0.2, None]) == [0.2, None]


def test_welch_matches_scipy_on_raw_samples():
    rng = np.random.default_rng(7)
    a = rng.normal(10, 2, 40)
    b = rng.normal(11, 5, 55)
    result = ex.compare_means(a.mean(), a.var(ddof=1), len(a), b.mean(), b.var(ddof=1), len(b))
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert result.t_statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    interval = reference.confidence_interval(0.95)
    assert result.ci_low == pytest.approx(interval.low, rel=1e-10)
    assert result.ci_high == pytest.approx(interval.high, rel=1e-10)


def test_welch_undefined_with_one_observation():
    result = ex.compare_means(1.0, None, 1, 2.0, 0.5, 10)
    assert result.difference == 1.0 and result.p_value is None


def test_wilson_interval_at_zero():
    low, high = ex.wilson_interval(0, 10, 1.96)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(1.96**2 / (10 + 1.96**2))


def test_always_valid_interval_hand_worked():
    # V = 1e-4, tau = 0.02: half = sqrt(1e-4 * 1.25 * (2 ln 20 + ln 5)) = 0.030824
    low, high = ex.always_valid_interval(0.01, 1e-4, tau=0.02)
    assert high - 0.01 == pytest.approx(0.030824, abs=1e-6)
    assert 0.01 - low == pytest.approx(high - 0.01)
    assert ex.always_valid_interval(0.01, 0.0) == (None, None)


def test_always_valid_interval_survives_daily_peeking():
    """A/A tests looked at after every 'day': the fixed interval cries wolf far
    more than 5% of the time, the always-valid one does not."""
    rng = np.random.default_rng(11)
    experiments, looks, per_look, p = 400, 40, 100, 0.1
    x1 = rng.binomial(per_look, p, (experiments, looks)).cumsum(axis=1)
    x2 = rng.binomial(per_look, p, (experiments, looks)).cumsum(axis=1)
    n = per_look * np.arange(1, looks + 1)
    fixed_false = sequential_false = 0
    for row in range(experiments):
        fixed_hit = sequential_hit = False
        for look in range(looks):
            comparison = ex.compare_proportions(int(x1[row, look]), int(n[look]), int(x2[row, look]), int(n[look]))
            fixed_hit |= comparison.ci_low > 0 or comparison.ci_high < 0
            variance = ex.proportion_difference_variance(
                int(x1[row, look]), int(n[look]), int(x2[row, look]), int(n[look])
            )
            low, high = ex.always_valid_interval(comparison.absolute_lift, variance)
            sequential_hit |= low > 0 or high < 0
        fixed_false += fixed_hit
        sequential_false += sequential_hit
    assert fixed_false / experiments > 0.10
    assert sequential_false / experiments <= 0.05


def test_enough_sample_and_traffic_thresholds():
    assert ex.has_enough_sample([500, 500], [100, 100]) is True
    assert ex.has_enough_sample([500, 499], [100, 100]) is False
    assert ex.has_enough_sample([500, 600], [100, 99]) is False
    assert ex.has_enough_traffic(16, 2) is True
    assert ex.has_enough_traffic(15, 2) is False


def test_verdict_lines():
    rows = [{"variant": "casual", "absolute_lift": 0.021, "p_value": 0.003, "is_significant": True}]
    assert ex.verdict(rows, [], True) == "variant casual +2.1 pts, p=0.003, significant; healthy"
    rows = [{"variant": "long", "absolute_lift": -0.004, "p_value": 0.41, "is_significant": False}]
    line = ex.verdict(rows, ["sample ratio mismatch (p=<0.001)"], True)
    assert line == "variant long -0.4 pts, p=0.410, not significant; sample ratio mismatch (p=<0.001)"
    assert ex.verdict(rows, ["not enough traffic"], False) == "not enough traffic to compare variants"
    assert (
        ex.verdict(rows, ["not enough traffic", "sample ratio mismatch (p=<0.001)"], False)
        == "not enough traffic to compare variants; sample ratio mismatch (p=<0.001)"
    )
    # the sample caveat qualifies a significant call
    significant = [{"variant": "casual", "absolute_lift": 0.05, "p_value": 0.01, "is_significant": True}]
    assert ex.verdict(significant, [], False) == (
        "variant casual +5.0 pts, p=0.010, significant (sample below 500 sessions / 100 conversions per variant); healthy"
    )
    # with several variants, the significant one with the largest lift is named
    several = [
        {"variant": "b", "absolute_lift": 0.01, "p_value": 0.001, "is_significant": True},
        {"variant": "c", "absolute_lift": 0.03, "p_value": 0.02, "is_significant": True},
        {"variant": "d", "absolute_lift": 0.08, "p_value": 0.2, "is_significant": False},
    ]
    assert ex.verdict(several, [], True).startswith("variant c +3.0 pts")


def test_health_problems():
    assert ex.health_problems(
        srm_detected=False, srm_p_value=0.4, contamination_rate=0.0, mismatch_rate=0.0, enough_traffic=True
    ) == []
    problems = ex.health_problems(
        srm_detected=True, srm_p_value=1e-9, contamination_rate=0.05, mismatch_rate=0.0, enough_traffic=True
    )
    assert problems[0].startswith("sample ratio mismatch")
    assert "5.0% of conversations saw several variants" in problems[1]


def variant(name, order, control, sessions, conversions, weight=0.5, **extra):
    row = {
        "test_name": "t", "variant": name, "variant_order": order, "is_control": control, "weight": weight,
        "sessions": sessions, "conversions": conversions, "completions": 0, "handoffs": 0,
        "satisfaction_n": 0, "satisfaction_mean": None, "satisfaction_variance": None,
        "first_response_n": 0, "first_response_mean": None, "first_response_variance": None,
        "quality_n": 0, "quality_mean": None, "quality_variance": None,
        "primary_metric": None,
    }
    row.update(extra)
    return row


def test_score_conversion_test_rows():
    rows = ex.score_conversion_test([variant("b", 1, False, 30, 16), variant("a", 0, True, 28, 14)])
    assert [row["variant"] for row in rows] == ["a", "b"]  # variant_order, not input order
    control, treated = rows
    assert control["absolute_lift"] is None and control["is_significant"] is None
    assert treated["z_score"] == pytest.approx(0.2539, abs=5e-5)
    assert control["srm_p_value"] == treated["srm_p_value"] == ex.sample_ratio_mismatch([28, 30]).p_value
    assert control["enough_sample"] is False and control["has_enough_traffic"] is True


def test_score_conversion_test_zero_sessions_and_partial_weights():
    rows = ex.score_conversion_test(
        [variant("a", 0, True, 0, 0, weight=None), variant("b", 1, False, 40, 4, weight=0.7)]
    )
    control, treated = rows
    assert control["conversion_rate"] is None
    assert treated["conversion_rate"] == pytest.approx(0.1)
    assert treated["absolute_lift"] is None and treated["p_value"] is None and treated["is_significant"] is None
    # a missing weight means equal weights: 0 vs 40 against 20/20
    assert treated["srm_chi_square"] == pytest.approx(40.0)


def test_score_metrics_holm_family_and_guardrails():
    control = variant(
        "a", 0, True, 1000, 100, completions=400, handoffs=100,
        satisfaction_n=900, satisfaction_mean=0.50, satisfaction_variance=0.04,
        first_response_n=800, first_response_mean=3000.0, first_response_variance=250_000.0,
        quality_n=1000, quality_mean=0.60, quality_variance=0.04,
    )
    treated = variant(
        "b", 1, False, 1000, 130, completions=420, handoffs=150,
        satisfaction_n=900, satisfaction_mean=0.51, satisfaction_variance=0.04,
        first_response_n=800, first_response_mean=2990.0, first_response_variance=250_000.0,
        quality_n=1000, quality_mean=0.64, quality_variance=0.04,
    )
    rows = {(row["variant"], row["metric_name"]): row for row in ex.score_metrics([control, treated])}
    assert len(rows) == 12
    family = [
        rows[("b", name)] for name in ("conversion_rate", "completion_rate", "satisfaction_score", "quality_score")
    ]
    adjusted = ex.holm([row["p_value"] for row in family])
    assert [row["p_value_adjusted"] for row in family] == pytest.approx(adjusted)
    assert rows[("b", "conversion_rate")]["metric_role"] == "primary"
    assert rows[("b", "completion_rate")]["metric_role"] == "secondary"
    # quality 0.60 -> 0.64 over 1000 sessions each (Welch t = 4.47): a secondary metric, significant after Holm
    quality = rows[("b", "quality_score")]
    assert quality["metric_role"] == "secondary" and quality["value"] == pytest.approx(0.64)
    assert quality["difference"] == pytest.approx(0.04) and quality["is_significant"] is True
    # handoffs 10% -> 15%: significant and harmful (lower is better)
    handoff = rows[("b", "handoff_rate")]
    assert handoff["p_value_adjusted"] is None
    assert handoff["is_significant"] is True and handoff["guardrail_breached"] is True
    # first response 10 ms faster, not significant: no breach
    assert rows[("b", "first_response_ms")]["guardrail_breached"] is False
    assert all(rows[("a", name)]["p_value"] is None for name in ex.METRICS)
