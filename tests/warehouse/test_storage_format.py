"""A new warehouse is written in the pinned DuckDB's storage format, whoever creates it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

from convo_warehouse.lib.warehouse import STORAGE_VERSION, connect

REPO_ROOT = Path(__file__).resolve().parents[2]


def storage_version(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select tags['storage_version'] from duckdb_databases() where not internal "
                           "and database_name = current_database()").fetchone()[0]
    finally:
        con.close()


def test_the_loader_creates_the_warehouse_in_the_pinned_storage_format(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    connect(path).close()
    assert storage_version(path).startswith(STORAGE_VERSION)
    # DuckDB's default for a new file is the old, larger format
    duckdb.connect(str(tmp_path / "default.duckdb")).close()
    assert not (storage_version(tmp_path / "default.duckdb") or "").startswith(STORAGE_VERSION)


def test_dbt_creates_the_warehouse_in_the_same_format(tmp_path):
    """profiles.yml gives every DuckDB target the same version when it opens the file."""
    profiles = yaml.safe_load((REPO_ROOT / "profiles.yml").read_text())["convo_warehouse"]["outputs"]
    duckdb_targets = {name: output for name, output in profiles.items() if output["type"] == "duckdb"}
    assert duckdb_targets
    for name, output in duckdb_targets.items():
        assert output["config_options"]["storage_compatibility_version"] == STORAGE_VERSION, name

    # dbt debug opens (so creates) the file; in a process of its own, which then lets go of it
    path = tmp_path / "created-by-dbt.duckdb"
    env = {**os.environ, "CONVO_DUCKDB_PATH": str(path), "DBT_PROFILES_DIR": str(REPO_ROOT),
           "DBT_LOG_PATH": str(tmp_path / "logs")}
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "debug", "--project-dir", str(REPO_ROOT)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stdout[-2000:]
    assert storage_version(path).startswith(STORAGE_VERSION)
