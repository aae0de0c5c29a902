"""Models compared with statistics (lib/model_views.py), as the Models page and /api/models show them.

A hand-made snapshot (random outcomes for three named models, one too small to compare, and
`unknown`) is read by model_comparison; every interval and test is recomputed here with SciPy's
own routines from the per-conversation rows (binomtest's Wilson interval, a chi-square test of
the 2x2 table for the pooled z-test, ttest_ind for Welch, t.interval), sharing no code with
lib/experiments.py. The read API serves the same rows from a published snapshot folder.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import duckdb
import numpy as np
import pytest
from scipy import stats

from convo_warehouse.lib.model_views import model_comparison
from convo_warehouse.lib.scope import Scope

# model -> (conversations, completion probability, handoff probability, satisfaction mean)
MODELS = {"gpt-a": (240, 0.62, 0.08, 0.70), "gpt-b": (180, 0.48, 0.15, 0.55), "claude-c": (150, 0.60, 0.09, 0.68),
          "tiny-d": (12, 0.90, 0.00, 0.90), "unknown": (60, 0.95, 0.01, 0.95)}
MIN_STARTED = 30


def build(con, seed: int = 11) -> dict[str, list[dict]]:
    """The marts the comparison reads, and the per-conversation truth per model."""
    rng = np.random.default_rng(seed)
    conversations, models, measures, truth = [], [], [], {}
    number = 0
    for model, (count, p_complete, p_handoff, mean) in MODELS.items():
        for _ in range(count):
            number += 1
            cid = f"c{number:04d}"
            started = bool(rng.random() < 0.95)
            completed = started and bool(rng.random() < p_complete)
            handed_off = started and bool(rng.random() < p_handoff)
            satisfaction = float(np.clip(rng.normal(mean, 0.2), 0, 1)) if started else None
            channel = "web" if number % 3 else "sms"
            unpriced = 1 if model in ("unknown", "tiny-d") or number % 17 == 0 else 0
            cost = None if unpriced and model in ("unknown", "tiny-d") else round(float(rng.uniform(0.001, 0.02)), 6)
            conversations.append((cid, dt.date(2026, 3, 1 + number % 5), channel))
            models.append((cid, model, dt.date(2026, 3, 1 + number % 5), 4, 2, 900, 60, 4000.0, 4, 4 - unpriced,
                           unpriced, cost))
            measures.append((cid, float(completed), float(started), float(handed_off), satisfaction or 0.0,
                             float(started)))
            truth.setdefault(model, []).append({"channel": channel, "started": started, "completed": completed,
                                                "handed_off": handed_off, "satisfaction": satisfaction,
                                                "unpriced": unpriced, "cost": cost})
    con.execute("create schema marts")
    con.execute("create table marts.fct_conversations (conversation_id varchar, conversation_date date, channel varchar, "
                "agent_id varchar, environment varchar, last_event_at timestamp)")
    con.executemany("insert into marts.fct_conversations values (?, ?, ?, 'agent', 'production', ?)",
                    [(cid, day, channel, dt.datetime.combine(day, dt.time(12))) for cid, day, channel in conversations])
    con.execute("create table marts.fct_conversation_models (conversation_id varchar, model varchar, "
                "conversation_date date, agent_messages bigint, token_measurements bigint, input_tokens bigint, "
                "output_tokens bigint, latency_ms_total double, latency_measurements bigint, "
                "priced_agent_messages bigint, unpriced_agent_messages bigint, cost_usd double)")
    con.executemany("insert into marts.fct_conversation_models values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", models)
    con.execute("create table marts.metrics_by_conversation (conversation_id varchar, "
                "completion_rate__numerator double, completion_rate__denominator double, "
                "handoff_rate__numerator double, avg_satisfaction_score__numerator double, "
                "avg_satisfaction_score__denominator double)")
    con.executemany("insert into marts.metrics_by_conversation values (?, ?, ?, ?, ?, ?)", measures)
    return truth


@pytest.fixture(scope="module")
def snapshot():
    con = duckdb.connect()
    truth = build(con)
    yield con, truth
    con.close()


def holm(p_values: list[float]) -> list[float]:
    order = sorted(range(len(p_values)), key=lambda index: p_values[index])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def test_intervals_and_tests_equal_scipys(snapshot):
    con, truth = snapshot
    shown = {row["model"]: row for row in model_comparison(con, min_started=MIN_STARTED).to_dict("records")}
    assert set(shown) == set(MODELS)
    started = {model: [r for r in rows if r["started"]] for model, rows in truth.items()}
    comparable = [model for model in MODELS if model != "unknown" and len(started[model]) >= MIN_STARTED]
    assert set(comparable) == {model for model, row in shown.items() if row["is_comparable"]}
    assert "tiny-d" not in comparable and "unknown" not in comparable

    for measure, flag, better in (("completion", "completed", max), ("handoff", "handed_off", min)):
        rates = {model: sum(r[flag] for r in started[model]) / len(started[model]) for model in MODELS}
        best = better(comparable, key=lambda model: rates[model])
        p_values = {}
        for model, row in shown.items():
            successes, trials = sum(r[flag] for r in started[model]), len(started[model])
            assert row[f"{measure}_rate"] == pytest.approx(rates[model])
            interval = stats.binomtest(successes, trials).proportion_ci(method="wilson")
            assert (row[f"{measure}_ci_low"], row[f"{measure}_ci_high"]) == pytest.approx(
                (interval.low, interval.high), rel=1e-6)
            assert row[f"{measure}_is_best"] == (model == best)
            if model in comparable and model != best:
                best_successes, best_trials = sum(r[flag] for r in started[best]), len(started[best])
                table = [[successes, trials - successes], [best_successes, best_trials - best_successes]]
                p_values[model] = stats.chi2_contingency(table, correction=False).pvalue
                assert row[f"{measure}_difference"] == pytest.approx(rates[model] - rates[best])
                assert row[f"{measure}_difference_ci_low"] < row[f"{measure}_difference"] < row[f"{measure}_difference_ci_high"]
            else:
                assert math.isnan(row[f"{measure}_p_value"])
        adjusted = dict(zip(p_values, holm(list(p_values.values())), strict=True))
        for model, p_value in p_values.items():
            assert shown[model][f"{measure}_p_value"] == pytest.approx(p_value, rel=1e-9)
            assert shown[model][f"{measure}_p_adjusted"] == pytest.approx(adjusted[model], rel=1e-9)
            assert shown[model][f"{measure}_worse_than_best"] == (adjusted[model] < 0.05)

    values = {model: np.array([r["satisfaction"] for r in started[model]]) for model in MODELS}
    best = max(comparable, key=lambda model: values[model].mean())
    p_values = {}
    for model, row in shown.items():
        sample = values[model]
        low, high = stats.t.interval(0.95, len(sample) - 1, loc=sample.mean(), scale=stats.sem(sample))
        assert (row["satisfaction_mean"], row["satisfaction_sd"]) == pytest.approx((sample.mean(), sample.std(ddof=1)))
        assert (row["satisfaction_ci_low"], row["satisfaction_ci_high"]) == pytest.approx((low, high))
        assert row["satisfaction_is_best"] == (model == best)
        if model in comparable and model != best:
            p_values[model] = stats.ttest_ind(values[best], sample, equal_var=False).pvalue
    for model, adjusted_p in zip(p_values, holm(list(p_values.values())), strict=True):
        assert shown[model]["satisfaction_p_value"] == pytest.approx(p_values[model], rel=1e-6)
        assert shown[model]["satisfaction_p_adjusted"] == pytest.approx(adjusted_p, rel=1e-6)
    # the planted differences are large enough to be found: gpt-b is worse than the best on all three
    assert shown["gpt-b"]["completion_worse_than_best"] and shown["gpt-b"]["satisfaction_worse_than_best"]


def test_costs_count_unpriced_messages_and_never_guess(snapshot):
    con, truth = snapshot
    shown = {row["model"]: row for row in model_comparison(con).to_dict("records")}
    for model, rows in truth.items():
        priced = [r for r in rows if not r["unpriced"]]
        assert shown[model]["unpriced_agent_messages"] == sum(r["unpriced"] for r in rows)
        assert shown[model]["priced_conversations"] == len(priced)
        if priced:
            assert shown[model]["cost_per_conversation"] == pytest.approx(sum(r["cost"] for r in priced) / len(priced))
        else:  # no price at all: no cost shown, not zero
            assert shown[model]["cost_per_conversation"] is None or math.isnan(shown[model]["cost_per_conversation"])


def test_the_scope_filters_the_conversations(snapshot):
    con, truth = snapshot
    shown = {row["model"]: row for row in model_comparison(con, Scope(channels=("sms",))).to_dict("records")}
    for model, rows in truth.items():
        sms = [r for r in rows if r["channel"] == "sms"]
        assert shown[model]["conversations"] == len(sms)
        assert shown[model]["completed"] == sum(r["completed"] for r in sms)


def test_the_read_api_serves_the_comparison(snapshot, tmp_path):
    from starlette.testclient import TestClient

    from convo_warehouse.api.app import ApiConfig, create_app

    con, _ = snapshot
    version = tmp_path / "serving" / "versions" / "v1"
    version.mkdir(parents=True)
    con.execute(f"attach '{version / 'warehouse.duckdb'}' as published")
    con.execute("copy from database memory to published")
    con.execute("detach published")
    (version / "manifest.json").write_text(json.dumps({"version": "v1", "tables": {}}))
    (tmp_path / "serving" / "current").symlink_to(version)
    expected = model_comparison(con, Scope(channels=("web",)), min_started=40)
    with TestClient(create_app(ApiConfig(serving_dir=tmp_path / "serving")), base_url="http://127.0.0.1") as client:
        response = client.get("/api/models", params={"period": "all", "channel": "web", "min_started": 40})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["min_started"] == 40 and body["scope"]["channels"] == ["web"]
        assert [row["model"] for row in body["models"]] == list(expected["model"])
        for row, (_, want) in zip(body["models"], expected.iterrows(), strict=True):
            for column in ("conversations", "completion_rate", "completion_ci_low", "handoff_p_adjusted",
                           "satisfaction_ci_high", "satisfaction_is_best", "cost_per_conversation"):
                value = want[column]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    assert row[column] is None, column
                else:
                    assert row[column] == pytest.approx(value), column
        assert client.get("/api/models", params={"min_started": "many"}).status_code == 400
        assert "/api/models" in client.get("/api/openapi.json").json()["paths"]
