"""metric_sum() (macros/metrics/metrics_long_format.sql): counts summed as integers,
everything else through exact_sum(), the same doubles either way.

The metrics marts sum every numerator and denominator with metric_sum(), over
each conversation's contribution column; here the contribution summed is the
expression itself. It
must take the integer path only for the constant 1 and a flag written with
metric_flag_format() around a plain condition (exact whatever the row order),
and give exactly what exact_sum() gives for those; any other expression,
including one that only looks like a flag at its end, must go through
exact_sum() unchanged.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from support.warehouse import Warehouse

# (name, expression): the integer path's expressions, then expressions it must leave to exact_sum()
COUNTS = {
    "constant": "1",
    "flag": "case when values_table.b then 1 else 0 end",
    "flag_of_two_conditions": "case when values_table.b and values_table.x > 0 then 1 else 0 end",
    # words that contain `case` / `then` are no second branch
    "flag_of_a_column_named_like_a_keyword": "case when values_table.is_authenticated then 1 else 0 end",
}
NOT_COUNTS = {
    "value": "values_table.x",
    "coalesced_value": "coalesce(values_table.x, 0)",
    "two_branches": "case when values_table.b then 0.5 when values_table.x > 0 then 1 else 0 end",
    "nested_case": "case when (case when values_table.b then 0.5 else 2 end) > 1 then 1 else 0 end",
    "nested_case_in_capitals": "case when (CASE WHEN values_table.b THEN 0.5 ELSE 2 END) > 1 then 1 else 0 end",
}

SQL = "select\n" + ",\n".join(
    f"    {{{{ metric_sum({expression!r}, {expression!r}) }}}} as {name}__metric_sum,\n"
    f"    {{{{ exact_sum({expression!r}) }}}} as {name}__exact_sum"
    for name, expression in {**COUNTS, **NOT_COUNTS}.items()
) + "\nfrom values_table"

# every numerator and denominator of the metric definitions, and what metric_sum() makes of it
DEFINITIONS_SQL = """
{%- set sums = [] -%}
{%- for metric in metrics_definitions() if metric.kind != 'percentile' -%}
    {%- for expression in [metric.numerator, metric.denominator] if expression -%}
        {%- do sums.append((expression, metric_sum(expression, expression))) -%}
    {%- endfor -%}
{%- endfor -%}
select * from (values
{%- for expression, summed in sums %}
    ({{ string_literal(expression) }}, {{ string_literal(summed) }}){{ ',' if not loop.last }}
{%- endfor %}
) as sums (expression, summed)
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, dbt_target_dir) -> Warehouse:
    return Warehouse(tmp_path_factory.mktemp("metric-sum"), dbt_target_dir)


@pytest.fixture(scope="module")
def compiled(warehouse) -> str:
    return warehouse.dbt("compile", "--inline", SQL).result.results[0].node.compiled_code


def select_items(compiled: str) -> dict[str, str]:
    """Each output column's compiled expression, by column name."""
    body = compiled.split("select", 1)[1].rsplit("from values_table", 1)[0]
    items = {}
    for name in {**COUNTS, **NOT_COUNTS}:
        for kind in ("metric_sum", "exact_sum"):
            alias = f" as {name}__{kind}"
            before = body.split(alias, 1)[0]
            items[f"{name}__{kind}"] = before.rsplit(",\n", 1)[-1].strip()
    return items


def test_every_flag_of_the_metric_definitions_is_summed_as_an_integer(warehouse):
    compiled = warehouse.dbt("compile", "--inline", DEFINITIONS_SQL).result.results[0].node.compiled_code
    sums = duckdb.connect().execute(compiled).fetchall()
    flags = [(expression, summed) for expression, summed in sums
             if expression == "1" or (expression.startswith("case when ") and expression.endswith(" then 1 else 0 end"))]
    others = [(expression, summed) for expression, summed in sums if (expression, summed) not in flags]
    # the definitions count conversations with flags; a few sum values (durations, scores)
    assert len(flags) >= 30 and len(others) >= 5, (len(flags), len(others))
    for expression, summed in flags:
        assert summed.startswith("cast(sum(") and "decimal" not in summed, expression
    for expression, summed in others:
        assert "decimal(38, 18)" in summed, expression


def test_counts_take_the_integer_path_and_the_rest_exact_sum(compiled):
    items = select_items(compiled)
    for name in COUNTS:
        assert "decimal" not in items[f"{name}__metric_sum"], name
        assert items[f"{name}__metric_sum"].startswith("cast(sum("), name
    for name in NOT_COUNTS:
        assert items[f"{name}__metric_sum"] == items[f"{name}__exact_sum"], name
        assert "decimal(38, 18)" in items[f"{name}__metric_sum"], name


def test_metric_sum_gives_the_same_doubles_as_exact_sum_in_any_row_order(compiled):
    rng = np.random.default_rng(20261125)
    rows = [
        (bool(flag), float(x) if keep else None)
        for flag, x, keep in zip(
            rng.integers(0, 2, 5000), rng.lognormal(2, 3, 5000) * rng.choice([-1, 1], 5000), rng.random(5000) > 0.05,
            strict=True,
        )
    ]
    results = []
    for seed in range(3):
        shuffled = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
        con = duckdb.connect()
        con.execute("create table values_table (b boolean, x double)")
        con.executemany("insert into values_table values (?, ?)", shuffled)
        con.execute("alter table values_table add column is_authenticated boolean")
        con.execute("update values_table set is_authenticated = not b")
        cursor = con.execute(compiled)
        names = [column[0] for column in cursor.description]
        results.append(dict(zip(names, cursor.fetchone(), strict=True)))
    for row in results:
        for name in {**COUNTS, **NOT_COUNTS}:
            assert row[f"{name}__metric_sum"] == row[f"{name}__exact_sum"], name
            assert isinstance(row[f"{name}__metric_sum"], float), name
    assert results[0] == results[1] == results[2]
    assert results[0]["constant__metric_sum"] == len(rows)
    assert results[0]["flag__metric_sum"] == sum(flag for flag, _ in rows)
