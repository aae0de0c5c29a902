"""Deleted rows stay in their row groups until the pipeline's compaction (lib/run_state.py):
every checkpoint of a run, dbt's included, leaves them; the daily build, or any run a day after
it, vacuums them before it builds."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml

from convo_warehouse.lib import run_state
from convo_warehouse.lib.warehouse import NO_VACUUM, connect

REPO_ROOT = Path(__file__).resolve().parents[2]


def _row_groups(con, table: str) -> int:
    return con.execute(f"select count(distinct row_group_id) from pragma_storage_info('{table}')").fetchone()[0]


def test_checkpoints_leave_deleted_rows_until_the_compaction(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = connect(path)
    con.execute("create table events as select i, 'event-' || i as event_id from range(600000) as r(i)")
    con.execute("checkpoint")
    con.execute("delete from events where i % 3 <> 0")
    con.close()

    con = connect(path)
    try:
        full = _row_groups(con, "events")
        con.execute("create table other (a integer)")
        con.execute("insert into other values (1)")
        con.execute("checkpoint")  # what every run's checkpoint does: the deleted rows stay
        assert _row_groups(con, "events") == full

        con.execute("insert into other values (2)")
        run_state.compact(con)
        assert _row_groups(con, "events") < full
        assert con.execute("select count(*) from events").fetchone()[0] == 200000
        # the connection checkpoints without vacuuming again afterwards
        assert con.execute("select current_setting('max_vacuum_tasks')").fetchone()[0] == NO_VACUUM["max_vacuum_tasks"]
    finally:
        con.close()


def test_dbt_checkpoints_as_the_runs_own_connections_do():
    """profiles.yml gives every DuckDB target the setting lib/warehouse.py's connections use."""
    outputs = yaml.safe_load((REPO_ROOT / "profiles.yml").read_text())["convo_warehouse"]["outputs"]
    duckdb_targets = {name: output for name, output in outputs.items() if output["type"] == "duckdb"}
    assert duckdb_targets
    for name, output in duckdb_targets.items():
        assert {key: output["settings"].get(key) for key in NO_VACUUM} == NO_VACUUM, name


def test_the_daily_build_compacts_and_any_run_a_day_after_it(tmp_path, monkeypatch):
    con = connect(tmp_path / "warehouse.duckdb")
    try:
        assert run_state.compaction_due(con, "load_and_rebuild_job")  # no run yet
        daily_build_ended = datetime(2026, 1, 31, 2, 50)
        monkeypatch.setattr(run_state, "_now", lambda: daily_build_ended)
        run_state.record_run_started(con, "daily", "build_all_job", "fingerprint")
        run_state.record_run_complete(con, "daily")
        run_state.record_run_started(con, "failed-daily", "build_all_job", "fingerprint")  # never completed

        for hours, due in ((1, False), (23, False), (24, True), (30, True)):
            monkeypatch.setattr(run_state, "_now", lambda hours=hours: daily_build_ended + timedelta(hours=hours))
            assert run_state.compaction_due(con, "load_and_rebuild_job") is due, hours
            assert run_state.compaction_due(con, "build_all_job")
    finally:
        con.close()
