"""A production run with every user-editable seed cut down to its required columns.

`convo-warehouse run` runs on a copy of the dbt project (CONVO_DBT_PROJECT_DIR)
whose seeds have only the columns docs/staging.md calls required, e.g. the
contract's five-column experiments.csv. The run must succeed, build the marts
with the documented defaults, and run no dbt unit test (those belong to
`make test`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from support.warehouse import REPO_ROOT

# seed -> its required columns (docs/staging.md)
REQUIRED_COLUMNS = {
    "experiments": ["test_name", "variant", "variant_order", "is_control", "weight"],
    "funnel_stages": ["funnel_name", "stage_order", "stage", "reached_by"],
    "alert_rules": ["rule_name", "metric_name", "condition", "threshold", "time_window"],
    "event_type_aliases": ["alias", "event_type"],
    "field_aliases": ["alias_field", "canonical_field"],
    "model_prices": ["model", "input_price_per_million", "output_price_per_million", "valid_from"],
}


def _cut_seed(path: Path, columns: list[str], keep_rows=lambda row: True) -> None:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if keep_rows(row)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _minimal_project(destination: Path) -> Path:
    destination.mkdir(parents=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(REPO_ROOT / name, destination / name)
    for folder in ("models", "macros", "seeds", "tests/dbt"):
        shutil.copytree(REPO_ROOT / folder, destination / folder)
    for seed, columns in REQUIRED_COLUMNS.items():
        # funnel_stages without reached_by_value: keep the rules that need none
        keep = (lambda row: row["reached_by"] in ("classifier", "stage_reached")) if seed == "funnel_stages" else (
            lambda row: True
        )
        _cut_seed(destination / "seeds" / f"{seed}.csv", columns, keep)
    return destination


def test_production_run_with_required_seed_columns_only(tmp_path):
    project = _minimal_project(tmp_path / "project")
    assert (project / "seeds" / "experiments.csv").read_text().splitlines()[0] == (
        "test_name,variant,variant_order,is_control,weight"
    )
    landing, database, target = tmp_path / "landing", tmp_path / "warehouse.duckdb", tmp_path / "target"
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "CONVO_DBT_PROJECT_DIR": str(project),
        "DBT_TARGET_PATH": str(target),
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    generate = subprocess.run(
        [str(bin_dir / "convo-warehouse"), "generate", "--conversations", "150", "--days", "2", "--seed", "3",
         "--out", str(landing)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert generate.returncode == 0, generate.stderr[-3000:]
    run = subprocess.run(
        [str(bin_dir / "convo-warehouse"), "run", "--landing", str(landing), "--warehouse", str(database),
         "--quiet"],
        env=env, capture_output=True, text=True, timeout=1200, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]

    con = duckdb.connect(str(database), read_only=True)
    try:
        assert con.execute("select count(*) from marts.fct_conversations").fetchone()[0] > 100
        assert con.execute("select count(*) from marts.ab_test_results").fetchone()[0] > 0
        assert con.execute("select count(*) from marts.funnel_summary").fetchone()[0] > 0
        # optional columns took their documented defaults
        assert con.execute(
            "select distinct primary_metric from staging.stg_seeds__experiments"
        ).fetchall() == [("conversion_rate",)]
        assert con.execute(
            "select distinct segment_type, segment_value, severity, min_sample from staging.stg_seeds__alert_rules"
        ).fetchall() == [("all", "all", "medium", 1)]
        # a price seed without notes still prices the generated models' calls
        assert con.execute("select count(*) from staging.stg_seeds__model_prices where note is not null").fetchone()[0] == 0
        assert con.execute("select count(*) from marts.fct_conversation_models where cost_usd > 0").fetchone()[0] > 0
    finally:
        con.close()

    # dbt ran data tests but no unit test
    results = [json.loads(path.read_text()) for path in target.rglob("run_results.json")]
    unique_ids = [result["unique_id"] for run_results in results for result in run_results["results"]]
    assert any(unique_id.startswith("test.") for unique_id in unique_ids)
    assert not [unique_id for unique_id in unique_ids if unique_id.startswith("unit_test.")]
