"""A seed edited as the contract allows (optional columns dropped or added back) on a warehouse
built with the other shape: the seed and what reads it are rebuilt whole, and the run says so
(lib/dbt_state.py: dbt's state comparison finds the changed CSV)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from support.warehouse import REPO_ROOT

EXPERIMENTS_REQUIRED = ["test_name", "variant", "variant_order", "is_control", "weight"]


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
        return completed.stdout + completed.stderr

    def experiments_columns() -> list[str]:
        con = duckdb.connect(str(database), read_only=True)
        try:
            return [row[0] for row in con.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'seeds' and table_name = 'experiments' order by ordinal_position"
            ).fetchall()]  # fmt: skip
        finally:
            con.close()

    def rebuilt_whole(output: str) -> set[str]:
        """The tables the run's dbt step dropped to build them whole (its log line)."""
        lines = [line for line in output.splitlines() if "rebuilt whole, changed since the last successful build" in line]
        return {name.strip() for line in lines for name in line.split(": ", 1)[-1].split(",")}

    first = run()
    assert rebuilt_whole(first) == set()  # a first build: nothing was built to change
    assert experiments_columns() == full_header

    # The contract's five columns: dbt loads a seed into its table's columns, so the seed and
    # everything computed from it are built whole.
    _rewrite_experiments(project, EXPERIMENTS_REQUIRED)
    second = run()
    assert {"seeds.experiments", "staging.stg_seeds__experiments", "marts.ab_test_exposures"} <= rebuilt_whole(second)
    assert "staging.base_events_parsed" not in rebuilt_whole(second)
    assert experiments_columns() == EXPERIMENTS_REQUIRED

    # And back: the optional columns added to a warehouse built without them.
    _rewrite_experiments(project, full_header)
    third = run()
    assert "seeds.experiments" in rebuilt_whole(third)
    assert experiments_columns() == full_header
    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute("select count(*) from marts.ab_test_results").fetchone()[0] > 0
    finally:
        con.close()
