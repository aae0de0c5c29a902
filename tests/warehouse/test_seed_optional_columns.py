"""User-editable seeds with only their required columns (docs/staging.md), on a copy of the dbt
project.

One warehouse, two builds: every seed cut to its required columns (the contract's five-column
experiments.csv among them), built as a pipeline run's dbt step builds (``Warehouse.run_build()``:
dbt's state comparison with the last build's manifest, then the production build); then the
shipped seeds, built by `convo-warehouse run` on the copy (CONVO_DBT_PROJECT_DIR). The optional
columns take their documented defaults, the run after the seed edit rebuilds the seeds and what
reads them whole and says so (lib/dbt_state.py: dbt's state comparison finds the changed CSV),
and a production build runs data tests but no dbt unit test (those belong to `make test`).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.warehouse import REPO_ROOT, Warehouse, copy_project, parsing_from_the_session

from convo_warehouse.lib.dbt_commands import build_results
from convo_warehouse.lib.generate import generate_events

# seed -> its required columns (docs/staging.md)
REQUIRED_COLUMNS = {
    "experiments": ["test_name", "variant", "variant_order", "is_control", "weight"],
    "funnel_stages": ["funnel_name", "stage_order", "stage", "reached_by"],
    "alert_rules": ["rule_name", "metric_name", "condition", "threshold", "time_window"],
    "event_type_aliases": ["alias", "event_type"],
    "field_aliases": ["alias_field", "canonical_field"],
    "model_prices": ["model", "input_price_per_million", "output_price_per_million", "valid_from"],
}


def _write_seed(project: Path, seed: str, columns: list[str] | None) -> None:
    """``seed`` of ``project`` as shipped, cut to ``columns`` (None: every shipped column)."""
    with open(REPO_ROOT / "seeds" / f"{seed}.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        shipped = list(reader.fieldnames or [])
        rows = list(reader)
    if columns is not None and seed == "funnel_stages":
        # without reached_by_value: keep the rules that need none
        rows = [row for row in rows if row["reached_by"] in ("classifier", "stage_reached")]
    with open(project / "seeds" / f"{seed}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or shipped, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# dbt's seed loader (agate) warns of every column_types entry (dbt_project.yml) naming an optional
# column the cut seeds lack: expected here, and the warnings would hide others in the summary
@pytest.mark.filterwarnings("ignore:.* does not match the name of any column in this table:RuntimeWarning")
def test_runs_after_seeds_lose_or_regain_their_optional_columns(tmp_path):
    project = copy_project(tmp_path / "project")
    full_header = (REPO_ROOT / "seeds" / "experiments.csv").read_text().splitlines()[0].split(",")
    assert len(full_header) > len(REQUIRED_COLUMNS["experiments"])
    warehouse = Warehouse(tmp_path / "warehouse", tmp_path / "target", project)
    generate_events(warehouse.landing, conversations=150, days=2, seed=3, progress=False)
    warehouse.load()

    def built_in_process() -> tuple[set[str], list[str]]:
        """A pipeline run's dbt step: the tables it dropped to build them whole, and the nodes it ran."""
        _, dropped, result = warehouse.run_build()
        return set(dropped), [node_result.node.unique_id for node_result in result.result.results]

    def pipeline_run(warehouse: Warehouse) -> tuple[set[str], list[str]]:
        """`convo-warehouse run` on the project copy: the tables its dbt step dropped to build them
        whole (its log line), and the nodes its dbt build ran."""
        target = tmp_path / "pipeline-target"
        (tmp_path / "dagster_home").mkdir()
        parsing = parsing_from_the_session(warehouse.root, target)
        env = {
            **os.environ,
            **parsing,
            "CONVO_DBT_PROJECT_DIR": str(project),
            "DBT_PROFILES_DIR": str(project),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "CONVO_SERVING_DIR": str(tmp_path / "serving"),
        }
        completed = subprocess.run(
            [str(Path(sys.executable).parent / "convo-warehouse"), "run", "--landing", str(warehouse.landing),
             "--warehouse", parsing["CONVO_DUCKDB_PATH"]],
            env=env, capture_output=True, text=True, timeout=1200, cwd=tmp_path,
        )  # fmt: skip
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, output[-6000:]
        marker = "rebuilt whole, changed since the last successful build"
        lines = [line for line in output.splitlines() if marker in line]
        return (
            {name.strip() for line in lines for name in line.split(": ", 1)[-1].split(",")},
            [unique_id for log in target.rglob("dbt.log") for unique_id, _, _ in build_results(log)[1]],
        )

    def experiments_columns(warehouse: Warehouse) -> list[str]:
        return [row[0] for row in warehouse.query(
            "select column_name from information_schema.columns"
            " where table_schema = 'seeds' and table_name = 'experiments' order by ordinal_position"
        )]  # fmt: skip

    # A first build with every seed at its required columns (the contract's five-column
    # experiments.csv among them): the optional columns take their documented defaults.
    for seed, columns in REQUIRED_COLUMNS.items():
        _write_seed(project, seed, columns)
    rebuilt, ran = built_in_process()
    assert rebuilt == set()  # a first build: nothing was built to change
    assert experiments_columns(warehouse) == REQUIRED_COLUMNS["experiments"]
    assert warehouse.scalar("select count(*) from marts.fct_conversations") > 100
    assert warehouse.scalar("select count(*) from marts.ab_test_results") > 0
    assert warehouse.scalar("select count(*) from marts.funnel_summary") > 0
    assert warehouse.query("select distinct primary_metric from staging.stg_seeds__experiments") == [
        ("conversion_rate",)
    ]
    assert warehouse.query(
        "select distinct segment_type, segment_value, severity, min_sample from staging.stg_seeds__alert_rules"
    ) == [("all", "all", "medium", 1)]
    # a price seed without notes still prices the generated models' calls
    assert warehouse.scalar("select count(*) from staging.stg_seeds__model_prices where note is not null") == 0
    assert warehouse.scalar("select count(*) from marts.fct_conversation_models where cost_usd > 0") > 0

    # The shipped seeds: their optional columns added to a warehouse built without them. dbt
    # loads a seed into its table's columns, so the seeds and everything computed from them
    # are built whole; field_aliases (all its columns are required) is unchanged, so the
    # parsed events are left alone.
    for seed in REQUIRED_COLUMNS:
        _write_seed(project, seed, None)
    # (on a copy of the warehouse folder, its kept manifest included: dbt in this process holds
    # the file open, and a run refuses a warehouse another writer holds)
    warehouse = warehouse.copy(tmp_path / "run")
    rebuilt, ran_again = pipeline_run(warehouse)
    assert {"seeds.experiments", "staging.stg_seeds__experiments", "marts.ab_test_exposures",
            "seeds.alert_rules", "seeds.model_prices", "seeds.event_type_aliases"} <= rebuilt  # fmt: skip
    assert "staging.base_events_parsed" not in rebuilt
    assert experiments_columns(warehouse) == full_header
    assert warehouse.scalar("select count(*) from marts.ab_test_results") > 0
    assert warehouse.scalar("select count(*) from staging.stg_seeds__alert_rules where description is not null") > 0
    assert warehouse.scalar("select count(*) from staging.stg_seeds__model_prices where note is not null") > 0

    # dbt ran data tests but no unit test
    unique_ids = ran + ran_again
    assert any(unique_id.startswith("test.") for unique_id in unique_ids)
    assert not [unique_id for unique_id in unique_ids if unique_id.startswith("unit_test.")]
