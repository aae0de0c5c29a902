"""The statistics written in both SQL (segment_comparison's macros) and Python
(lib/experiments): computed by both on many inputs, they must agree.

- Wilson score interval: wilson_interval_bound (macros/statistics) vs wilson_interval;
- pooled two-proportion z-score: metrics_pooled_z_score vs compare_proportions;
- two-sided p-value: metrics_two_sided_p_value (Abramowitz & Stegun, |error| < 1.5e-7) vs two_sided_p;
- the significance level: the dbt var significance_level vs ALPHA;
- segment_comparison's p-value adjustment: benjamini_hochberg_adjusted vs
  scipy.stats.false_discovery_control (Benjamini-Hochberg), per family.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
import yaml
from scipy import stats
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


BH_SQL = """
with ranked as (
    select
        family,
        member,
        p_value,
        row_number() over (partition by family order by p_value asc nulls last, member) as p_value_rank,
        count(p_value) over (partition by family) as family_tests
    from p_values
)
select
    family,
    member,
    {{ benjamini_hochberg_adjusted('ranked.p_value', 'ranked.p_value_rank', 'ranked.family_tests', 'ranked.family') }}
        as adjusted
from ranked
"""


def p_value_families() -> list[tuple[int, int, float | None]]:
    """(family, member, p-value or None): families of 1 to 60 tests, uniform and small p-values,
    ties (p-values drawn from a few values, exact ones), and tests without a p-value."""
    rng = np.random.default_rng(20261123)
    rows = []
    for family in range(300):
        size = int(rng.integers(1, 61))
        kind = family % 4
        if kind == 0:
            values = rng.uniform(size=size)
        elif kind == 1:
            values = rng.uniform(size=size) ** 4  # many small ones: several significant
        elif kind == 2:
            values = rng.choice([0.001, 0.01, 0.04, 0.2, 1.0], size=size)  # ties
        else:
            values = np.where(rng.uniform(size=size) < 0.3, np.nan, rng.uniform(size=size) ** 2)
        rows += [(family, member, None if np.isnan(value) else float(value)) for member, value in enumerate(values)]
    return rows


@pytest.fixture(scope="module")
def adjusted_sql(tmp_path_factory, dbt_target_dir) -> dict[tuple[int, int], float | None]:
    warehouse = Warehouse(tmp_path_factory.mktemp("statistics-bh"), dbt_target_dir)
    compiled = warehouse.dbt("compile", "--inline", BH_SQL).result.results[0].node.compiled_code
    con = duckdb.connect()
    con.execute("create table p_values (family integer, member integer, p_value double)")
    con.executemany("insert into p_values values (?, ?, ?)", p_value_families())
    return {(family, member): adjusted for family, member, adjusted in con.execute(compiled).fetchall()}


def test_benjamini_hochberg_sql_equals_scipy(adjusted_sql):
    rows = p_value_families()
    by_family: dict[int, list[tuple[int, float | None]]] = {}
    for family, member, p_value in rows:
        by_family.setdefault(family, []).append((member, p_value))
    changed = significant_only_unadjusted = 0
    for family, members in by_family.items():
        tested = [(member, p_value) for member, p_value in members if p_value is not None]
        expected = {}
        if tested:
            adjusted = stats.false_discovery_control([p for _, p in tested], method="bh")
            expected = {member: float(value) for (member, _), value in zip(tested, adjusted, strict=True)}
        for member, p_value in members:
            actual = adjusted_sql[(family, member)]
            if p_value is None:
                assert actual is None, (family, member)
                continue
            assert actual == pytest.approx(expected[member], rel=1e-12, abs=1e-15), (family, member)
            changed += actual != p_value
            significant_only_unadjusted += p_value < 0.05 <= actual
    # the families exercise the adjustment: values raised, and tests significant only before it
    assert changed > 1000 and significant_only_unadjusted > 50


def test_significance_level_is_alpha():
    project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())
    assert project["vars"]["significance_level"] == ex.ALPHA
