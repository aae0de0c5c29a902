"""A seed edited as the contract allows (optional columns dropped or added back) on a warehouse
built with the other shape: the seed is rebuilt and the run says so (lib/seed_columns.py)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from support.warehouse import REPO_ROOT
from convo_warehouse.lib.seed_columns import (
    ChangedSeed,
    SeedTable,
    changed_columns,
    rebuild_changed_seeds,
    rebuilt_seed_lines,
)

EXPERIMENTS_REQUIRED = ["test_name", "variant", "variant_order", "is_control", "weight"]


def test_changed_columns_compares_headers_with_tables_in_order():
    headers = {
        "same": ["a", "b"],
        "fewer": ["a"],
        "more": ["a", "b", "c"],
        "reordered": ["b", "a"],
        "case_and_space": ["A", " b"],
        "not_built_yet": ["a"],
    }
    tables = {name: ["a", "b"] for name in headers if name != "not_built_yet"}
    assert changed_columns(headers, tables) == ["fewer", "more", "reordered"]


def test_describe_names_the_columns_removed_and_added():
    seed = SeedTable("experiments", "seeds", "experiments", Path("seeds/experiments.csv"))
    assert ChangedSeed(seed, ("a", "b", "c"), ("a",)).describe() == "seed experiments rebuilt (columns removed: b, c)"
    assert ChangedSeed(seed, ("a",), ("a", "d")).describe() == "seed experiments rebuilt (columns added: d)"
    assert ChangedSeed(seed, ("a", "b"), ("b", "a")).describe() == "seed experiments rebuilt (columns reordered)"


def test_rebuild_drops_only_changed_seed_tables_and_records_them(tmp_path):
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "changed.csv").write_text("a,b\n1,2\n")
    (tmp_path / "seeds" / "same.csv").write_text("a,b\n1,2\n")
    manifest = {"nodes": {
        f"seed.p.{name}": {"resource_type": "seed", "name": name, "schema": "seeds", "alias": name,
                           "original_file_path": f"seeds/{name}.csv"}
        for name in ("changed", "same", "new")
    } | {"model.p.m": {"resource_type": "model", "name": "m", "schema": "x", "original_file_path": "m.sql"}}}
    (tmp_path / "seeds" / "new.csv").write_text("a\n1\n")
    con = duckdb.connect()
    con.execute("create schema seeds; create table seeds.changed (a int, b int, c int); create table seeds.same (a int, b int)")
    at = dt.datetime(2026, 11, 23, 12, 0)
    [change] = rebuild_changed_seeds(con, manifest, tmp_path, now=at)
    assert (change.seed.name, change.previous_columns, change.csv_columns) == ("changed", ("a", "b", "c"), ("a", "b"))
    tables = {row[0] for row in con.execute("select table_name from information_schema.tables where table_schema = 'seeds'").fetchall()}
    assert tables == {"same"}
    assert rebuilt_seed_lines(con, at) == [
        "seed changed rebuilt (columns removed: c): its CSV columns changed, so it was built anew and what reads it follows"
    ]
    assert rebuilt_seed_lines(con, at + dt.timedelta(seconds=1)) == []  # a later run rebuilt nothing
    assert rebuild_changed_seeds(con, manifest, tmp_path) == []


def _project_copy(destination: Path) -> Path:
    destination.mkdir(parents=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(REPO_ROOT / name, destination / name)
    for folder in ("models", "macros", "seeds", "tests/dbt"):
        shutil.copytree(REPO_ROOT / folder, destination / folder)
    return destination


def _rewrite_experiments(project: Path, columns: list[str]) -> None:
    with open(REPO_ROOT / "seeds" / "experiments.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with open(project / "seeds" / "experiments.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_pipeline_rebuilds_a_seed_whose_optional_columns_were_dropped_or_added_back(tmp_path):
    project = _project_copy(tmp_path / "project")
    full_header = (REPO_ROOT / "seeds" / "experiments.csv").read_text().splitlines()[0].split(",")
    assert len(full_header) > len(EXPERIMENTS_REQUIRED)
    landing, database = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "CONVO_DBT_PROJECT_DIR": str(project),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "CONVO_SERVING_DIR": str(tmp_path / "serving"),
    }
    (tmp_path / "dagster_home").mkdir()
    generate = subprocess.run(
        [str(bin_dir / "convo-warehouse"), "generate", "--conversations", "120", "--days", "2", "--seed", "5",
         "--out", str(landing)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert generate.returncode == 0, generate.stderr[-3000:]

    def run() -> str:
        completed = subprocess.run(
            [str(bin_dir / "convo-warehouse"), "run", "--landing", str(landing), "--warehouse", str(database)],
            env=env, capture_output=True, text=True, timeout=1200, cwd=tmp_path,
        )  # fmt: skip
        assert completed.returncode == 0, (completed.stdout + completed.stderr)[-6000:]
        return completed.stdout

    def experiments_columns() -> list[str]:
        con = duckdb.connect(str(database), read_only=True)
        try:
            return [row[0] for row in con.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'seeds' and table_name = 'experiments' order by ordinal_position"
            ).fetchall()]  # fmt: skip
        finally:
            con.close()

    first = run()
    assert "rebuilt" not in first
    assert experiments_columns() == full_header

    # The contract's five columns: DuckDB used to refuse to load it into the six-column table.
    _rewrite_experiments(project, EXPERIMENTS_REQUIRED)
    second = run()
    removed = ", ".join(column for column in full_header if column not in EXPERIMENTS_REQUIRED)
    assert f"seed experiments rebuilt (columns removed: {removed})" in second
    assert experiments_columns() == EXPERIMENTS_REQUIRED

    # And back: the optional columns added to a warehouse built without them.
    _rewrite_experiments(project, full_header)
    third = run()
    assert f"seed experiments rebuilt (columns added: {removed})" in third
    assert experiments_columns() == full_header
    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute("select count(*) from marts.ab_test_results").fetchone()[0] > 0
        assert con.execute("select count(*) from audit.seed_rebuilds").fetchone()[0] == 2
    finally:
        con.close()
