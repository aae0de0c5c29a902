"""Exact sums of values and squares, in parts (macros/aggregation/exact_moments.sql),
read back by convo_warehouse.lib.exact_moments.

The SQL macros cut every value into integer limbs in base 2^30 and sum
products of limbs; the Python helper turns the parts into exact rationals. On
thousands of values of every magnitude the parts, summed per day and then
over days, must give exactly the sum of the values' images (each value
rounded to a multiple of 2^-60, computed here with exact fractions) and of
their squares, and the mean and sample variance must be the exact ones
rounded once: the same bits however the values are split into days.
"""

from __future__ import annotations

from fractions import Fraction

import duckdb
import numpy as np
import pytest
from support.warehouse import Warehouse

from convo_warehouse.lib.exact_moments import exact_total, mean_and_variance

SQL = """
with

limbed as (
    select
        values_table.day_number,
        values_table.x,
        {{ exact_limbs('values_table.x', 'metric') }}
    from values_table
),

days as (
    select
        limbed.day_number,
        {{ exact_moment_sums('limbed', 'metric') }}
    from limbed
    group by limbed.day_number
),

totals as (
    select
        {{ exact_moment_totals('days', 'metric') }}
    from days
)

select * from totals
"""

def half_away(value: Fraction) -> int:
    """The nearest integer, halves away from zero (as SQL's round)."""
    magnitude = int(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def image(x: float) -> Fraction:
    """The value the limbs stand for: its integer part, then the rest in units
    of 2^-30 and what is left in units of 2^-60, each rounded."""
    exact = Fraction(x)
    whole = half_away(exact)
    scaled = (exact - whole) * 2**30
    high = half_away(scaled)
    low = half_away((scaled - high) * 2**30)
    return whole + Fraction(high, 2**30) + Fraction(low, 2**60)


def values() -> list[float | None]:
    """Scores in 0..1, response times up to 1e7 ms, negatives, integers, tiny and large values, halves, nulls."""
    rng = np.random.default_rng(20261123)
    drawn = [
        *rng.uniform(0, 1, 1500),
        *rng.lognormal(7, 2, 1500).clip(max=1e7),
        *rng.normal(0, 1e4, 500),
        *rng.integers(-10**6, 10**6, 200).astype(float),
        *(rng.uniform(-1, 1, 100) * 1e-12),
        *(rng.uniform(-1, 1, 50) * 1e14),
        0.5, -0.5, 1.5, 2.5, 0.0, -0.0, 0.1, 0.2, 0.3, 1 / 3,
    ]
    return [float(v) for v in drawn] + [None] * 20


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, dbt_target_dir) -> str:
    warehouse = Warehouse(tmp_path_factory.mktemp("exact-moments"), dbt_target_dir)
    return warehouse.dbt("compile", "--inline", SQL).result.results[0].node.compiled_code


def totals_of(compiled: str, xs: list[float | None], days: list[int]) -> tuple[dict, list[Fraction]]:
    """The totals row of the compiled SQL over ``xs`` split into ``days``, and the values' images."""
    con = duckdb.connect()
    con.execute("create table values_table (day_number integer, x double)")
    con.executemany("insert into values_table values (?, ?)", list(zip(days, xs, strict=True)))
    cursor = con.execute(compiled)
    names = [column[0] for column in cursor.description]
    row = dict(zip(names, cursor.fetchone(), strict=True))
    return row, [image(x) for x in xs if x is not None]


def test_parts_sum_to_the_exact_sums_of_the_images_and_their_squares(compiled):
    xs = values()
    rng = np.random.default_rng(7)
    row, images = totals_of(compiled, xs, [int(day) for day in rng.integers(0, 30, len(xs))])
    assert row["metric_n"] == len(images) == sum(x is not None for x in xs)
    assert all(isinstance(row[name], str) for name in row if name != "metric_n")
    assert exact_total(row, "metric", "sum") == sum(images)
    assert exact_total(row, "metric", "square_sum") == sum(value**2 for value in images)
    # an image is the value rounded to a multiple of 2^-60
    for x, value in zip([x for x in xs if x is not None], images, strict=True):
        assert abs(value - Fraction(x)) <= Fraction(1, 2**61)


def test_mean_and_variance_are_exact_and_the_same_however_the_days_split(compiled):
    xs = values()
    rng = np.random.default_rng(11)
    one_day, _ = totals_of(compiled, xs, [0] * len(xs))
    by_day, images = totals_of(compiled, xs, [int(day) for day in rng.integers(0, 30, len(xs))])
    reversed_days, _ = totals_of(compiled, xs[::-1], [int(day) for day in rng.integers(0, 400, len(xs))])
    n, mean, variance = mean_and_variance(by_day, "metric")
    assert (n, mean, variance) == mean_and_variance(one_day, "metric") == mean_and_variance(reversed_days, "metric")
    exact = images
    exact_mean = sum(exact) / n
    assert mean == float(exact_mean)
    assert variance == float(sum((x - exact_mean) ** 2 for x in exact) / (n - 1))
    present = np.array([x for x in xs if x is not None])
    assert mean == pytest.approx(present.mean(), rel=1e-12)
    assert variance == pytest.approx(present.var(ddof=1), rel=1e-12)


def test_small_samples(compiled):
    empty, _ = totals_of(compiled, [None, None], [0, 1])
    assert mean_and_variance(empty, "metric") == (0, None, None)
    single, _ = totals_of(compiled, [0.75, None], [0, 1])
    assert mean_and_variance(single, "metric") == (1, 0.75, None)
    constant, _ = totals_of(compiled, [0.1] * 7, list(range(7)))
    assert mean_and_variance(constant, "metric") == (7, 0.1, 0.0)


def test_parts_of_another_metric_are_not_read():
    row = {"metric_n": 2, "metric_sum_p0": "3", "metric_square_sum_p0": "5", "other_metric_sum_p0": "100"}
    assert mean_and_variance(row, "metric") == (2, 1.5, 0.5)
    with pytest.raises(KeyError, match="no missing_sum_p<k> parts"):
        exact_total(row, "missing", "sum")
