"""Every dbt model, seed and snapshot as a Dagster asset; dbt tests as asset checks.

One ``@dbt_assets`` over the whole manifest. The translator names assets
``[schema, table]`` (``staging/stg_events``, ``marts/fct_conversations``) and
maps the two dbt sources to the Python assets that write them, so lineage
reads ``raw/events -> staging -> marts -> classification -> funnels``.

The classifier (a Python asset) sits between dbt models: it reads
``marts/fct_conversations`` and the funnel models read its table. Dagster
resolves that by running this multi-asset as several steps (it is
subsettable): the models before the classifier, then the classifier, then
the models after it. Each step is a ``dbt build --select <its models>``.
"""


import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from convo_warehouse.concurrency import WRITER_POOL, busy_retry, is_busy_error
from convo_warehouse.lib.seed_columns import rebuild_changed_seeds
from convo_warehouse.lib.warehouse import writer_lock
from convo_warehouse.project import dbt_project, manifest_path
from convo_warehouse.resources import WarehouseResource
from convo_warehouse.spark.target import on_spark

# dbt sources written by Python assets: dbt (schema, table) -> Dagster asset key.
SOURCE_ASSET_KEYS: dict[tuple[str, str], dg.AssetKey] = {
    ("raw", "events"): dg.AssetKey(["raw", "events"]),
    ("classification", "stage_classifications"): dg.AssetKey(
        ["classification", "stage_classifications"]
    ),
    ("classification", "message_sentiment"): dg.AssetKey(["classification", "message_sentiment"]),
    ("classification", "conversation_judgments"): dg.AssetKey(["classification", "conversation_judgments"]),
}

# A production run builds and checks data: models, seeds and data tests.
# dbt unit tests check our SQL against fixtures; they run in `make test` and
# CI (`dbt build` there), never in a scheduled run or `convo-warehouse run`.
PRODUCTION_BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]

# Top-level folders under models/ that are layers (and Dagster groups).
MODEL_LAYERS = ("staging", "intermediate", "marts", "quarantine", "audit")


class ConvoDbtTranslator(DagsterDbtTranslator):
    """Asset keys ``[schema, name]``, groups by layer, sources -> Python assets."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        resource_type = dbt_resource_props["resource_type"]
        schema = dbt_resource_props["schema"]
        if resource_type == "source":
            table = dbt_resource_props.get("identifier") or dbt_resource_props["name"]
            return SOURCE_ASSET_KEYS.get((schema, table), dg.AssetKey([schema, table]))
        name = dbt_resource_props.get("alias") or dbt_resource_props["name"]
        return dg.AssetKey([schema, name])

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        """Nodes that read nothing (seeds, a model of constants) come after the loader.

        An ordering dependency, not data lineage: without it Dagster runs them
        as a dbt invocation of their own before the loader (seconds of fixed
        cost per run), and a run with nothing new could not skip them.
        """
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id, {})
        if node.get("resource_type") in ("seed", "model") and not node.get("depends_on", {}).get("nodes"):
            return spec.merge_attributes(deps=[SOURCE_ASSET_KEYS[("raw", "events")]])
        return spec

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type == "seed":
            return "seeds"
        if resource_type == "snapshot":
            return "snapshots"
        fqn = dbt_resource_props.get("fqn") or []
        if len(fqn) > 1 and fqn[1] in MODEL_LAYERS:
            return fqn[1]
        return "dbt"


translator = ConvoDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
)

if not manifest_path().exists():
    raise RuntimeError(
        f"dbt manifest not found at {manifest_path()}. Run `dbt parse` from the repo root "
        "(or `make ui` / `make run`, which do it) before loading the Dagster definitions."
    )


def python_model_nodes() -> dict[str, dict]:
    """The manifest's Python models (the experiment statistics), by unique id."""
    nodes = json.loads(manifest_path().read_text())["nodes"]
    return {
        unique_id: node
        for unique_id, node in nodes.items()
        if node["resource_type"] == "model" and node.get("language") == "python"
    }


# dbt-spark runs Python models only on Databricks clusters: on Spark they are
# a step of their own (assets/spark_models.py), between the dbt steps.
SPARK_EXCLUDED = " ".join(sorted(node["name"] for node in python_model_nodes().values()))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool=WRITER_POOL,
    exclude=SPARK_EXCLUDED if on_spark() else "",
)
def dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
) -> Iterator[Any]:
    """``dbt build`` of the selected models, seeds and their tests, against the warehouse.

    A busy warehouse (another writer holds the DuckDB file) is retried with
    exponential backoff; any other dbt failure (a failing test, a SQL error)
    fails the step at once, since retrying would give the same result.
    """
    # When Dagster runs this multi-asset as several steps (around the
    # classifier), a step must only run the tests whose every parent is built
    # by it or before it: dbt's "buildable" indirect selection. dbt's default,
    # "eager", would run a relationships test of a later model in the seeds'
    # step, before that model exists; "cautious" would never run a test whose
    # parents are built in two different steps. Set through the environment
    # (not a CLI flag) so dagster-dbt can still override it with "empty" when a
    # user deselects checks in the UI.
    overrides = {
        "CONVO_DUCKDB_PATH": str(warehouse.database),
        "DBT_INDIRECT_SELECTION": os.environ.get("DBT_INDIRECT_SELECTION") or "buildable",
    }
    previous = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        with writer_lock(warehouse.database):
            if not on_spark():  # a seed whose CSV columns changed is built anew (lib/seed_columns.py)
                with warehouse.connect() as con:
                    for change in rebuild_changed_seeds(con, manifest_path(), dbt_project.project_dir):
                        context.log.warning(change.describe())
            invocation = dbt.cli(PRODUCTION_BUILD_ARGS, context=context, raise_on_error=False)
            yield from invocation.stream()
            error = invocation.get_error()
    except Exception as busy:  # the lock itself: WarehouseBusyError
        error = busy
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if error is None:
        return
    if is_busy_error(error):
        raise busy_retry(context, error) from error
    raise error
