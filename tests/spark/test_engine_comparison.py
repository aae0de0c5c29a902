"""The engine comparison `make test-spark` relies on finds every kind of difference.

Rows as both engines return them (DuckDB first); no Spark needed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from convo_warehouse.spark.compare import CONTRACT_MARTS, compare_rows

KEYS = ("metric_date", "metric_name")


def rows(value=0.25, *, extra=None):
    base = [
        {"metric_date": date(2026, 1, 1), "metric_name": "conversations", "value": 10.0, "at": datetime(2026, 1, 1, 9)},
        {"metric_date": date(2026, 1, 1), "metric_name": "completion_rate", "value": value, "at": None},
    ]
    return base + (extra or [])


def test_equal_rows_in_another_order_with_engine_types_are_equal():
    spark = [dict(row) for row in reversed(rows())]
    spark[0]["value"] = Decimal("0.25")  # Spark may return decimals
    spark[1]["at"] = datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert compare_rows(rows(), spark, KEYS) == []


def test_doubles_within_the_relative_tolerance_are_equal_and_beyond_it_differ():
    assert compare_rows(rows(0.25), rows(0.25 * (1 + 5e-10)), KEYS) == []
    problems = compare_rows(rows(0.25), rows(0.25 * (1 + 5e-9)), KEYS)
    assert len(problems) == 1 and "column value" in problems[0] and "completion_rate" in problems[0]


def test_a_missing_a_surplus_row_and_a_null_are_reported():
    extra = {"metric_date": date(2026, 1, 2), "metric_name": "conversations", "value": 1.0, "at": None}
    assert any("row count" in problem for problem in compare_rows(rows(), rows(extra=[extra]), KEYS))
    assert any("only on spark" in problem for problem in compare_rows(rows(), rows(extra=[extra]), KEYS))
    assert any("only on duckdb" in problem for problem in compare_rows(rows(extra=[extra]), rows(), KEYS))
    assert compare_rows(rows(), rows(None), KEYS) != []


def test_a_boolean_is_not_equal_to_a_number_and_a_missing_column_is_reported():
    duck = [{"conversation_id": "a", "converted": True, "turns": 1}]
    assert compare_rows(duck, [{"conversation_id": "a", "converted": 1, "turns": 1}], ("conversation_id",)) != []
    problems = compare_rows(duck, [{"conversation_id": "a", "converted": True}], ("conversation_id",))
    assert problems == ["columns missing on spark: turns"]


def test_every_contract_mart_is_compared():
    contract = {
        "fct_conversations", "fct_conversation_stages", "funnel_stage_daily", "funnel_summary",
        "funnel_dropoffs", "metrics_daily", "metrics_hourly", "ab_test_exposures", "ab_test_results",
    }
    assert set(CONTRACT_MARTS) == contract
