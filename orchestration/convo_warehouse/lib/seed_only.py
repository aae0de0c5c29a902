"""Nodes computed from seeds alone: left out of a build when the project is the one last built.

A model whose every input is a seed or another such model (``stg_seeds__*``,
``int_funnel_stages_ordered``) or that reads nothing (``dim_metrics``,
``metricflow_time_spine``), and a data test whose every parent is one of
those or a seed, can only change when the project changes: no load reaches
them. Rebuilding them and running their tests every hour wrote the same
rows and checked them again (36 nodes in an hourly run, about 5 s of dbt
node time at 2M events: docs/benchmarks.md).

So ``dbt build`` leaves them out (``left_out``) when the dbt project's files
(models, macros, seeds, vars, profile: ``run_state.project_fingerprint``)
are those of the last build that built them all and succeeded
(``audit.seed_only_builds``, written by ``record_build``), and every such
model's table exists. Any change to the project builds and tests them all
again, as a first build does.

dbt leaves out a data test with any parent left out (its default, "eager",
indirect selection). A model that a test of other models also reads (the
relationships test from ``metric_alerts`` to ``stg_seeds__alert_rules``)
therefore stays in the build, so that test still runs; only its own tests
are left out, by name.

No Dagster here: ``assets/dbt.py`` calls these under the writer lock, around
``dbt build``; on Spark nothing is left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from convo_warehouse.lib.run_state import project_fingerprint

BUILDS_DDL = """
create schema if not exists audit;
create table if not exists audit.seed_only_builds (
    project_fingerprint varchar not null,
    built_at timestamp not null
);
"""

# Materializations rebuilt whole from their inputs (an incremental model keeps state of its own).
_REBUILT_WHOLE = ("table", "view")


@dataclass(frozen=True)
class SeedOnlyNodes:
    """The manifest's nodes computed from seeds alone."""

    #: models: unique id -> (schema, table)
    models: dict[str, tuple[str, str]]
    #: data tests whose every parent is a seed or one of ``models``: unique id -> name
    tests: dict[str, str]
    #: models that a data test of other nodes also reads: they stay in every build
    read_by_other_tests: frozenset[str]

    def left_out(self) -> list[str]:
        """dbt selectors of the nodes to leave out of a build (see the module docstring)."""
        models = [uid.split(".")[-1] for uid in self.models if uid not in self.read_by_other_tests]
        return sorted(models) + sorted(self.tests.values())


def seed_only_nodes(manifest: Mapping) -> SeedOnlyNodes:
    """The models computed from seeds alone (SQL, rebuilt whole) and the data tests of nothing else."""
    nodes = manifest["nodes"]
    verdicts: dict[str, bool] = {}

    def seed_only(unique_id: str) -> bool:
        if unique_id.startswith("seed."):
            return True
        if unique_id in verdicts:
            return verdicts[unique_id]
        node = nodes.get(unique_id)
        verdicts[unique_id] = bool(
            node is not None
            and node["resource_type"] == "model"
            and node.get("language", "sql") == "sql"
            and node["config"].get("materialized") in _REBUILT_WHOLE
            and all(seed_only(parent) for parent in node["depends_on"]["nodes"])
        )
        return verdicts[unique_id]

    models = {
        unique_id: (node["schema"], node.get("alias") or node["name"])
        for unique_id, node in nodes.items()
        if node["resource_type"] == "model" and seed_only(unique_id)
    }
    tests: dict[str, str] = {}
    read_by_other_tests: set[str] = set()
    for unique_id, node in nodes.items():
        if node["resource_type"] != "test":
            continue
        parents = node["depends_on"]["nodes"]
        if parents and all(seed_only(parent) for parent in parents):
            tests[unique_id] = node["name"]
        else:
            read_by_other_tests.update(parent for parent in parents if parent in models)
    return SeedOnlyNodes(models, tests, frozenset(read_by_other_tests))


def left_out(con: duckdb.DuckDBPyConnection, manifest: Mapping, project_dir: Path) -> list[str]:
    """The seed-only nodes to leave out of this build: none unless the project is the one the
    last complete build of them built (``audit.seed_only_builds``) and their tables exist."""
    nodes = seed_only_nodes(manifest)
    if not nodes.models or _last_build(con) != project_fingerprint(project_dir):
        return []
    present = set(
        con.execute("select table_schema, table_name from information_schema.tables").fetchall()
    )
    if any(relation not in present for relation in nodes.models.values()):
        return []
    return nodes.left_out()


def forget_build(con: duckdb.DuckDBPyConnection) -> None:
    """Before a build that builds seed-only nodes: until it succeeds, the next build leaves none out."""
    if _last_build(con) is not None:
        con.execute("delete from audit.seed_only_builds")


def record_build(
    con: duckdb.DuckDBPyConnection,
    manifest: Mapping,
    project_dir: Path,
    results: Iterable[Mapping],
    now: dt.datetime | None = None,
) -> None:
    """After a successful build: when it built every seed-only model (dbt's ``run_results``
    ``results``), record the project it built them from."""
    models = seed_only_nodes(manifest).models
    built = {result["unique_id"] for result in results if result["status"] == "success"}
    if not models or not set(models) <= built:
        return
    fingerprint = project_fingerprint(project_dir)
    if _last_build(con) == fingerprint:  # a build that changed nothing writes no byte
        return
    built_at = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    con.execute(BUILDS_DDL)
    con.execute("begin")
    con.execute("delete from audit.seed_only_builds")
    con.execute("insert into audit.seed_only_builds values (?, ?)", [fingerprint, built_at])
    con.execute("commit")


def _last_build(con: duckdb.DuckDBPyConnection) -> str | None:
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'audit' and table_name = 'seed_only_builds'"
    ).fetchone()[0]
    if not exists:
        return None
    row = con.execute("select project_fingerprint from audit.seed_only_builds").fetchone()
    return row[0] if row else None
