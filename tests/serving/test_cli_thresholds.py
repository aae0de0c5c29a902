"""Thresholds printed by the CLI are the constants the numbers were computed with.

Each test changes a constant and checks the printed text follows it: a
threshold typed into a message would keep the old number.
"""

from __future__ import annotations

from convo_warehouse.commands.experiments import render_test
from convo_warehouse.lib import experiments as ex


def a_test(enough_sample: bool = False, enough_traffic: bool = False) -> dict:
    base = {"test_name": "t", "total_sessions": 20, "srm_p_value": 0.4, "srm_detected": False,
            "srm_chi_square": 0.4, "enough_sample": enough_sample, "has_enough_traffic": enough_traffic,
            "conversions": 1, "sessions": 10, "conversion_rate": 0.1}
    control = {**base, "variant": "a", "is_control": True}
    variant = {**base, "variant": "b", "is_control": False, "absolute_lift": 0.0, "ci_low": -0.1, "ci_high": 0.1,
               "p_value": 1.0, "is_significant": False, "sequential_ci_low": None, "sequential_ci_high": None}
    return {"test_name": "t", "results": [control, variant], "health": [], "metrics": []}


def test_experiment_thresholds_follow_the_constants(monkeypatch):
    monkeypatch.setattr(ex, "MIN_SESSIONS", 1234)
    monkeypatch.setattr(ex, "MIN_CONVERSIONS", 56)
    monkeypatch.setattr(ex, "MIN_SESSIONS_PER_VARIANT_FOR_TRAFFIC", 9)
    monkeypatch.setattr(ex, "SRM_ALPHA", 0.002)
    monkeypatch.setattr(ex, "ALPHA", 0.01)
    text = "\n".join(render_test(a_test()))
    assert "needs >= 1,234 sessions and >= 56 conversions per variant" in text
    assert "not enough traffic (< 9 sessions per variant)" in text
    assert "mismatch when p < 0.002" in text
    assert "significant at p < 0.01" in text
    assert "500" not in text and "0.001" not in text
    enough = "\n".join(render_test(a_test(enough_sample=True, enough_traffic=True)))
    assert "enough (every variant >= 1,234 sessions and >= 56 conversions)" in enough


def test_verdict_sample_note_follows_the_constants(monkeypatch):
    monkeypatch.setattr(ex, "MIN_SESSIONS", 700)
    monkeypatch.setattr(ex, "MIN_CONVERSIONS", 70)
    rows = [{"variant": "b", "absolute_lift": 0.02, "p_value": 0.2, "is_significant": False}]
    assert ex.verdict(rows, [], enough_sample=False).endswith(
        "not significant (sample below 700 sessions / 70 conversions per variant); healthy"
    )
