"""The statistics written in both SQL (segment_comparison's macros) and Python
(lib/experiments): computed by both on many inputs, they must agree.

- Wilson score interval: wilson_interval_bound (macros/statistics) vs wilson_interval;
- pooled two-proportion z-score: metrics_pooled_z_score vs compare_proportions;
- two-sided p-value: metrics_two_sided_p_value (Abramowitz & Stegun, |error| < 1.5e-7) vs two_sided_p;
- the significance level: the dbt var significance_level vs ALPHA.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
import yaml
from support.warehouse import REPO_ROOT, Warehouse

from convo_warehouse.lib import experiments as ex

SQL = """
select
    case_id,
    {{ wilson_interval_bound('successes / sample_size', 'sample_size', 'low') }} as wilson_low,
    {{ wilson_interval_bound('successes / sample_size', 'sample_size', 'high') }} as wilson_high,
    {{ metrics_pooled_z_score('successes', 'sample_size', 'other_successes', 'other_sample_size') }} as z_score,
    {{ metrics_two_sided_p_value(metrics_pooled_z_score('successes', 'sample_size', 'other_successes', 'other_sample_size')) }}
        as p_value
from cases
"""


def cases() -> list[tuple[int, float, float, float, float]]:
    """(case, successes, sample_size, other_successes, other_sample_size): random sizes from 1 to 100,000
    and rates from 0 to 1, plus the edges (0 and 1 rates, a pooled rate of 0 or 1, an empty rest)."""
    rng = np.random.default_rng(20261122)
    rows = []
    for case in range(2000):
        n1, n2 = (int(v) for v in np.exp(rng.uniform(0, np.log(100_000), 2)).round())
        x1, x2 = int(rng.binomial(n1, rng.uniform())), int(rng.binomial(n2, rng.uniform()))
        rows.append((case, x1, n1, x2, n2))
    rows += [
        (2000, 0, 10, 0, 20), (2001, 10, 10, 20, 20), (2002, 0, 10, 5, 20), (2003, 10, 10, 0, 20),
        (2004, 3, 7, 0, 0), (2005, 1, 1, 0, 1), (2006, 500, 1000, 500, 1000), (2007, 14, 28, 16, 30),
    ]
    return [(case, float(x1), float(n1), float(x2), float(n2)) for case, x1, n1, x2, n2 in rows]


@pytest.fixture(scope="module")
def sql_results(tmp_path_factory, dbt_target_dir) -> dict[int, tuple]:
    warehouse = Warehouse(tmp_path_factory.mktemp("statistics-sql"), dbt_target_dir)
    compiled = warehouse.dbt("compile", "--inline", SQL).result.results[0].node.compiled_code
    con = duckdb.connect()
    con.execute("create table cases (case_id integer, successes double, sample_size double, "
                "other_successes double, other_sample_size double)")
    con.executemany("insert into cases values (?, ?, ?, ?, ?)", cases())
    return {row[0]: row[1:] for row in con.execute(compiled).fetchall()}


def test_wilson_interval_sql_equals_python(sql_results):
    for case, x1, n1, _, _ in cases():
        low, high = ex.wilson_interval(int(x1), int(n1))
        sql_low, sql_high = sql_results[case][:2]
        assert sql_low == pytest.approx(low, rel=1e-12, abs=1e-15), case
        assert sql_high == pytest.approx(high, rel=1e-12, abs=1e-15), case


def test_pooled_z_score_and_p_value_sql_equal_python(sql_results):
    undefined = 0
    for case, x1, n1, x2, n2 in cases():
        # Python's p1 is the reference side: z of (this - other) is compare_proportions(other, this)
        comparison = ex.compare_proportions(int(x2), int(n2), int(x1), int(n1)) if n2 else None
        sql_z, sql_p = sql_results[case][2:]
        if comparison is None or comparison.z_score is None:
            undefined += 1
            assert sql_z is None and sql_p is None, case
            continue
        assert sql_z == pytest.approx(comparison.z_score, rel=1e-9, abs=1e-12), case
        assert sql_p == pytest.approx(comparison.p_value, abs=1.5e-7), case
    assert undefined >= 5  # the edge cases: pooled rate 0 or 1, empty rest


def test_significance_level_is_alpha():
    project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())
    assert project["vars"]["significance_level"] == ex.ALPHA
