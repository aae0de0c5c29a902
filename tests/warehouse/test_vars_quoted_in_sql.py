"""A dbt var whose value lands in SQL text goes through the project's string_literal macro:
an apostrophe in a segment type or a message sender compiles to valid SQL with the value intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from support.warehouse import REPO_ROOT

VARS = {
    # not a date (the model casts it when it runs); compiled, it must stay one literal
    "segment_comparison_start_date": "2026-01-0'1",
    "user_message_senders": ["user", "customer's app"],
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("vars_quoted")
    env = {
        **os.environ,
        "CONVO_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "compile", "--quiet", "--project-dir", str(REPO_ROOT),
         "--select", "segment_comparison", "stg_events", "--vars", json.dumps(VARS)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]
    return {path.stem: path.read_text() for path in (root / "target" / "compiled").rglob("*.sql")}


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
