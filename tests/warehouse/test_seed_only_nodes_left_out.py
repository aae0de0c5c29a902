"""Nodes computed from seeds alone are left out of a build when the project is the one last built
(lib/seed_only.py); any change to the project builds and tests them all again."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from convo_warehouse.lib import seed_only
from convo_warehouse.lib.run_state import project_fingerprint


def _node(resource_type: str, name: str, parents: list[str], materialized: str = "table", **extra) -> dict:
    return {
        "resource_type": resource_type,
        "name": name,
        "schema": "s",
        "alias": name,
        "language": extra.pop("language", "sql"),
        "config": {"materialized": materialized},
        "depends_on": {"nodes": parents},
        **extra,
    }


MANIFEST = {
    "nodes": {
        "seed.p.rules": _node("seed", "rules", [], "seed"),
        "seed.p.tones": _node("seed", "tones", [], "seed"),
        # read by models only: left out
        "model.p.stg_tones": _node("model", "stg_tones", ["seed.p.tones"]),
        "model.p.tones_ordered": _node("model", "tones_ordered", ["model.p.stg_tones"], "view"),
        # read by a test of another model (relationships_alerts_rule): stays in
        "model.p.stg_rules": _node("model", "stg_rules", ["seed.p.rules"]),
        # served (the snapshot step waits for it): stays in
        "model.p.dim_rules": {**_node("model", "dim_rules", ["seed.p.rules"]), "schema": "marts"},
        # read by no model (the run's last step waits for it): stays in
        "model.p.constants": _node("model", "constants", []),
        "model.p.events": _node("model", "events", ["source.p.raw.events"], "replace_touched"),
        "model.p.alerts": _node(
            "model", "alerts", ["model.p.events", "model.p.stg_rules", "model.p.tones_ordered", "model.p.dim_rules"]
        ),
        # not rebuilt whole from seeds by SQL: never left out
        "model.p.seed_stats": _node("model", "seed_stats", ["seed.p.rules"], language="python"),
        "model.p.seed_history": _node("model", "seed_history", ["seed.p.rules"], "incremental"),
        "model.p.seed_reader": _node("model", "seed_reader", ["model.p.seed_stats", "model.p.seed_history"]),
        "test.p.not_null_tones_name": _node("test", "not_null_tones_name", ["seed.p.tones"], "test"),
        "test.p.unique_stg_tones_name": _node("test", "unique_stg_tones_name", ["model.p.stg_tones"], "test"),
        "test.p.tones_match_rules": _node(
            "test", "tones_match_rules", ["model.p.tones_ordered", "model.p.stg_rules"], "test"
        ),
        "test.p.relationships_alerts_rule": _node(
            "test", "relationships_alerts_rule", ["model.p.alerts", "model.p.stg_rules"], "test"
        ),
    }
}


def test_seed_only_models_are_sql_rebuilt_whole_from_seeds_and_stay_in_when_read_outside_dbt_models():
    nodes = seed_only.seed_only_nodes(MANIFEST)
    assert set(nodes.models) == {
        "model.p.stg_tones", "model.p.tones_ordered", "model.p.stg_rules", "model.p.dim_rules", "model.p.constants"
    }
    assert nodes.kept == {"model.p.stg_rules", "model.p.dim_rules", "model.p.constants"}
    # dbt leaves out the tests of a model left out (unique_stg_tones_name, tones_match_rules) with it
    assert nodes.left_out() == ["stg_tones", "tones_ordered"]


def _project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "models" / "stg_rules.sql").write_text("select * from {{ ref('rules') }}\n")
    (root / "dbt_project.yml").write_text("name: p\n")
    return root


def _warehouse_with_the_tables(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema s; create schema marts; create table marts.dim_rules (x int)")
    for name in ("stg_tones", "tones_ordered", "stg_rules", "constants"):
        con.execute(f"create table s.{name} (x int)")
    return con


def _results(*names: str) -> list[dict]:
    return [{"unique_id": f"model.p.{name}", "status": "success"} for name in names]


ALL_BUILT = _results("stg_tones", "tones_ordered", "stg_rules", "dim_rules", "constants")


def test_nothing_is_left_out_until_a_build_of_every_seed_only_model_succeeded(tmp_path):
    project = project_fingerprint(_project(tmp_path / "project"))
    con = _warehouse_with_the_tables(tmp_path)
    assert seed_only.left_out(con, MANIFEST, project) == []
    # a build that missed one of them (a subset run) records nothing
    seed_only.record_build(con, MANIFEST, project, _results("stg_tones", "stg_rules", "dim_rules", "constants"))
    assert seed_only.left_out(con, MANIFEST, project) == []
    seed_only.record_build(con, MANIFEST, project, ALL_BUILT)
    assert seed_only.left_out(con, MANIFEST, project) == seed_only.seed_only_nodes(MANIFEST).left_out()


def test_a_changed_project_file_a_missing_table_or_a_build_under_way_leaves_nothing_out(tmp_path):
    project = _project(tmp_path / "project")
    con = _warehouse_with_the_tables(tmp_path)
    before = project_fingerprint(project)
    seed_only.record_build(con, MANIFEST, before, ALL_BUILT)
    assert seed_only.left_out(con, MANIFEST, before) != []

    (project / "models" / "stg_rules.sql").write_text("select name from {{ ref('rules') }}\n")
    after = project_fingerprint(project)
    assert after != before
    assert seed_only.left_out(con, MANIFEST, after) == []
    seed_only.record_build(con, MANIFEST, after, ALL_BUILT)
    assert seed_only.left_out(con, MANIFEST, after) != []

    con.execute("drop table s.tones_ordered")
    assert seed_only.left_out(con, MANIFEST, after) == []
    con.execute("create table s.tones_ordered (x int)")

    # a build that builds them (nothing left out) forgets the record until it succeeds
    seed_only.forget_build(con)
    assert seed_only.left_out(con, MANIFEST, after) == []


def test_recording_the_same_project_again_changes_no_byte(tmp_path):
    project = project_fingerprint(_project(tmp_path / "project"))
    con = _warehouse_with_the_tables(tmp_path)
    at = dt.datetime(2026, 11, 26, 3, 0)
    seed_only.record_build(con, MANIFEST, project, ALL_BUILT, now=at)
    seed_only.record_build(con, MANIFEST, project, ALL_BUILT, now=at + dt.timedelta(hours=1))
    assert con.execute("select built_at from audit.seed_only_builds").fetchall() == [(at,)]


def test_the_real_project_leaves_out_the_seeds_staging_but_not_what_is_served_or_tested_with_metric_alerts():
    from convo_warehouse.project import ensure_manifest

    nodes = seed_only.seed_only_nodes(json.loads(ensure_manifest().read_text()))
    names = {unique_id.split(".")[-1] for unique_id in nodes.models}
    assert {"stg_seeds__experiments", "stg_seeds__funnel_stages", "dim_metrics", "metricflow_time_spine"} <= names
    assert not any(name.startswith(("stg_events", "fct_", "int_conversation")) for name in names)
    left_out = nodes.left_out()
    assert {"stg_seeds__experiments", "stg_seeds__funnel_stages", "int_funnel_stages_ordered"} <= set(left_out)
    assert {"stg_seeds__alert_rules", "dim_metrics", "metricflow_time_spine"}.isdisjoint(left_out)
