"""Nodes computed from seeds alone: left out of a build when the project is the one last built.

A model whose every input is a seed or another such model (``stg_seeds__*``,
``int_funnel_stages_ordered``) can only change when the project changes: no
load reaches it. Rebuilding such models and running their tests every hour
wrote the same rows and checked them again.

So ``dbt build`` leaves them out (``left_out``), with their tests (dbt drops
a data test with any parent left out), when the dbt project's files (models,
macros, seeds, vars, profile: ``run_state.project_fingerprint``, computed once
per build by the caller) are those of
the last build that built them all and succeeded (``audit.seed_only_builds``,
written by ``record_build``), and every such model's table exists. Any change
to the project builds and tests them all again, as a first build does.

A model stays in every build, with its tests, when something besides other
dbt models waits for it:

- a served table (``serving.SERVED_SCHEMAS``: ``dim_metrics``,
  ``metricflow_time_spine``): the snapshot step waits for each one, and
  Dagster skips a step whose input was not built;
- a model no other model reads: the run's last step (``audit/pipeline_runs``)
  waits for each such asset;
- a model that a data test of other models reads (``stg_seeds__alert_rules``,
  which ``metric_alerts``' relationships test reads): leaving it out would
  drop that test.

No Dagster here: ``assets/dbt.py`` calls these under the writer lock, around
``dbt build``; on Spark nothing is left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import duckdb

from convo_warehouse.lib.serving import SERVED_EXTRA_TABLES, SERVED_SCHEMAS
from convo_warehouse.lib.warehouse import table_exists

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
    """The manifest's models computed from seeds alone, by unique id -> (schema, table)."""

    models: dict[str, tuple[str, str]]
    #: those that stay in every build (read by something besides dbt models: the module docstring)
    kept: frozenset[str]

    def left_out(self) -> list[str]:
        """dbt selectors of the models to leave out of a build (dbt leaves out their tests with them)."""
        return sorted(unique_id.split(".")[-1] for unique_id in self.models if unique_id not in self.kept)


def seed_only_nodes(manifest: Mapping) -> SeedOnlyNodes:
    """The models computed from seeds alone (SQL, rebuilt whole) and which of them stay in every build."""
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
    read_by_models: set[str] = set()
    read_by_other_tests: set[str] = set()
    for node in nodes.values():
        parents = node.get("depends_on", {}).get("nodes", [])
        if node["resource_type"] == "model":
            read_by_models.update(parents)
        elif node["resource_type"] == "test" and not all(seed_only(parent) for parent in parents):
            read_by_other_tests.update(parents)
    kept = {
        unique_id
        for unique_id, relation in models.items()
        if _served(*relation) or unique_id not in read_by_models or unique_id in read_by_other_tests
    }
    return SeedOnlyNodes(models, frozenset(kept))


def _served(schema: str, table: str) -> bool:
    return schema in SERVED_SCHEMAS or f"{schema}.{table}" in SERVED_EXTRA_TABLES


def left_out(con: duckdb.DuckDBPyConnection, manifest: Mapping, project: str) -> list[str]:
    """The seed-only nodes to leave out of this build: none unless ``project`` (the dbt
    project's ``run_state.project_fingerprint``) is the one the last complete build of them
    built (``audit.seed_only_builds``) and their tables exist."""
    nodes = seed_only_nodes(manifest)
    if not nodes.models or _last_build(con) != project:
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
    project: str,
    results: Iterable[Mapping],
    now: dt.datetime | None = None,
) -> None:
    """After a successful build: when it built every seed-only model (dbt's ``run_results``
    ``results``), record ``project``, the fingerprint of the project it built them from."""
    models = seed_only_nodes(manifest).models
    built = {result["unique_id"] for result in results if result["status"] == "success"}
    if not models or not set(models) <= built:
        return
    if _last_build(con) == project:  # a build that changed nothing writes no byte
        return
    built_at = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
    con.execute(BUILDS_DDL)
    con.execute("begin")
    con.execute("delete from audit.seed_only_builds")
    con.execute("insert into audit.seed_only_builds values (?, ?)", [project, built_at])
    con.execute("commit")


def _last_build(con: duckdb.DuckDBPyConnection) -> str | None:
    if not table_exists(con, "audit.seed_only_builds"):
        return None
    row = con.execute("select project_fingerprint from audit.seed_only_builds").fetchone()
    return row[0] if row else None
