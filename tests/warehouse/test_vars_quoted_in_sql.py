"""A dbt var whose value lands in SQL text goes through the project's string_literal macro:
an apostrophe in a segment type or a message sender compiles to valid SQL with the value intact."""

from __future__ import annotations

import json

import duckdb
import pytest

from support.warehouse import Warehouse

VARS = {
    # not a date (the model casts it when it runs); compiled, it must stay one literal
    "segment_comparison_start_date": "2026-01-0'1",
    "user_message_senders": ["user", "customer's app"],
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, dbt_target_dir) -> dict[str, str]:
    """The two models compiled with ``VARS`` given on the command line (dbt renders a model's SQL
    with the invocation's vars when it compiles, so the session's parse serves)."""
    warehouse = Warehouse(tmp_path_factory.mktemp("vars_quoted"), dbt_target_dir)
    result = warehouse.dbt("compile", "--select", "segment_comparison", "stg_events", "--vars", json.dumps(VARS))
    return {node_result.node.name: node_result.node.compiled_code for node_result in result.result.results}


def _parse_error(sql: str) -> str | None:
    """DuckDB's parser on ``sql``: None when it parses."""
    result = json.loads(duckdb.execute("select json_serialize_sql(?)", [sql]).fetchone()[0])
    return result.get("error_message") if result.get("error") else None


@pytest.mark.parametrize(
    ("model", "literal"),
    [("segment_comparison", "'2026-01-0''1'"), ("stg_events", "'customer''s app'")],
)
def test_var_with_an_apostrophe_compiles_to_valid_sql(compiled, model, literal):
    sql = compiled[model]
    assert literal in sql
    assert _parse_error(sql) is None
    # The value reads back exactly.
    assert duckdb.execute(f"select {literal}").fetchone()[0] == literal[1:-1].replace("''", "'")
