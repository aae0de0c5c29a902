"""Nodes computed from seeds alone are left out of a build when the project is the one last built
(lib/seed_only.py); any change to the project builds and tests them all again."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from convo_warehouse.lib import seed_only


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
        "model.p.stg_rules": _node("model", "stg_rules", ["seed.p.rules"]),
        "model.p.rules_ordered": _node("model", "rules_ordered", ["model.p.stg_rules"], "view"),
        "model.p.constants": _node("model", "constants", []),
        "model.p.events": _node("model", "events", ["source.p.raw.events"], "replace_touched"),
        "model.p.alerts": _node("model", "alerts", ["model.p.events", "model.p.stg_rules"]),
        "model.p.seed_stats": _node("model", "seed_stats", ["seed.p.rules"], language="python"),
        "model.p.seed_history": _node("model", "seed_history", ["seed.p.rules"], "incremental"),
        "test.p.not_null_rules_name": _node("test", "not_null_rules_name", ["seed.p.rules"], "test"),
        "test.p.unique_stg_rules_name": _node("test", "unique_stg_rules_name", ["model.p.stg_rules"], "test"),
        "test.p.rules_match_constants": _node(
            "test", "rules_match_constants", ["model.p.rules_ordered", "model.p.constants"], "test"
        ),
        "test.p.relationships_alerts_rule": _node(
            "test", "relationships_alerts_rule", ["model.p.alerts", "model.p.stg_rules"], "test"
        ),
        "test.p.not_null_alerts_rule": _node("test", "not_null_alerts_rule", ["model.p.alerts"], "test"),
    }
}


def test_seed_only_nodes_are_sql_models_rebuilt_whole_from_seeds_and_the_tests_of_nothing_else():
    nodes = seed_only.seed_only_nodes(MANIFEST)
    assert set(nodes.models) == {"model.p.stg_rules", "model.p.rules_ordered", "model.p.constants"}
    assert set(nodes.tests.values()) == {
        "not_null_rules_name", "unique_stg_rules_name", "rules_match_constants"
    }
    # the relationships test of alerts reads stg_rules: stg_rules stays in the build, its own tests do not
    assert nodes.read_by_other_tests == {"model.p.stg_rules"}
    assert nodes.left_out() == [
        "constants", "rules_ordered", "not_null_rules_name", "rules_match_constants", "unique_stg_rules_name"
    ]


def _project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "models" / "stg_rules.sql").write_text("select * from {{ ref('rules') }}\n")
    (root / "dbt_project.yml").write_text("name: p\n")
    return root


def _warehouse_with_the_tables(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema s")
    for name in ("stg_rules", "rules_ordered", "constants"):
        con.execute(f"create table s.{name} (x int)")
    return con


def _results(*names: str) -> list[dict]:
    return [{"unique_id": f"model.p.{name}", "status": "success"} for name in names]


def test_nothing_is_left_out_until_a_build_of_every_seed_only_model_succeeded(tmp_path):
    project = _project(tmp_path / "project")
    con = _warehouse_with_the_tables(tmp_path)
    assert seed_only.left_out(con, MANIFEST, project) == []
    # a build that missed one of them (a subset run) records nothing
    seed_only.record_build(con, MANIFEST, project, _results("stg_rules", "constants"))
    assert seed_only.left_out(con, MANIFEST, project) == []
    seed_only.record_build(con, MANIFEST, project, _results("stg_rules", "rules_ordered", "constants"))
    assert seed_only.left_out(con, MANIFEST, project) == seed_only.seed_only_nodes(MANIFEST).left_out()


def test_a_changed_project_file_a_missing_table_or_a_build_under_way_leaves_nothing_out(tmp_path):
    project = _project(tmp_path / "project")
    con = _warehouse_with_the_tables(tmp_path)
    all_built = _results("stg_rules", "rules_ordered", "constants")
    seed_only.record_build(con, MANIFEST, project, all_built)
    assert seed_only.left_out(con, MANIFEST, project) != []

    (project / "models" / "stg_rules.sql").write_text("select name from {{ ref('rules') }}\n")
    assert seed_only.left_out(con, MANIFEST, project) == []
    seed_only.record_build(con, MANIFEST, project, all_built)
    assert seed_only.left_out(con, MANIFEST, project) != []

    con.execute("drop table s.constants")
    assert seed_only.left_out(con, MANIFEST, project) == []
    con.execute("create table s.constants (x int)")

    # a build that builds them (nothing left out) forgets the record until it succeeds
    seed_only.forget_build(con)
    assert seed_only.left_out(con, MANIFEST, project) == []


def test_recording_the_same_project_again_changes_no_byte(tmp_path):
    project = _project(tmp_path / "project")
    con = _warehouse_with_the_tables(tmp_path)
    all_built = _results("stg_rules", "rules_ordered", "constants")
    at = dt.datetime(2026, 11, 26, 3, 0)
    seed_only.record_build(con, MANIFEST, project, all_built, now=at)
    seed_only.record_build(con, MANIFEST, project, all_built, now=at + dt.timedelta(hours=1))
    assert con.execute("select built_at from audit.seed_only_builds").fetchall() == [(at,)]


def test_the_real_project_leaves_out_the_seed_models_but_keeps_the_one_metric_alerts_is_tested_against():
    from convo_warehouse.project import ensure_manifest

    nodes = seed_only.seed_only_nodes(json.loads(ensure_manifest().read_text()))
    names = {unique_id.split(".")[-1] for unique_id in nodes.models}
    assert {"stg_seeds__experiments", "stg_seeds__funnel_stages", "dim_metrics", "metricflow_time_spine"} <= names
    assert not any(name.startswith(("stg_events", "fct_", "int_conversation")) for name in names)
    assert {unique_id.split(".")[-1] for unique_id in nodes.read_by_other_tests} == {"stg_seeds__alert_rules"}
    left_out = nodes.left_out()
    assert "stg_seeds__alert_rules" not in left_out
    assert "unique_stg_seeds__alert_rules_rule_name" in left_out
    assert not any(name.startswith("relationships_metric_alerts") for name in left_out)
