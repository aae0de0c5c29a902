"""On Spark: each of the dbt project's Python models (the stage classifier, the statistics) as a step.

dbt-spark submits Python models only to Databricks clusters, so with
``CONVO_TARGET=spark`` they are left out of the dbt assets and each runs here
by ``python -m convo_warehouse.spark python-models --select <model>`` (its own
code on DataFrames read from Spark, then its dbt data tests). The assets keep
the dbt assets' keys, groups and upstreams, so the graph is the one DuckDB
shows, and Dagster runs the dbt models between them in steps of their own
(the dbt assets are subsettable).
"""

import json
from datetime import datetime, timezone

import dagster as dg

from convo_warehouse.assets.dbt import python_model_nodes, translator
from convo_warehouse.concurrency import WRITER_POOL
from convo_warehouse.project import manifest_path
from convo_warehouse.spark.target import run_spark_step


def _python_model_asset(node: dict, parents: dict) -> dg.AssetsDefinition:
    key = translator.get_asset_key(node)

    @dg.asset(
        key=key,
        deps=[translator.get_asset_key(parents[parent]) for parent in node["depends_on"]["nodes"]],
        group_name=translator.get_group_name(node),
        kinds={"python", "spark"},
        description=node.get("description") or None,
        pool=WRITER_POOL,
    )
    def _run(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        summary = run_spark_step(["python-models", "--select", node["name"]])
        context.log.info(summary)
        return dg.MaterializeResult(metadata={"engine": "spark"})

    return _run


def _assets() -> list[dg.AssetsDefinition]:
    manifest = json.loads(manifest_path().read_text())
    parents = {**manifest["nodes"], **manifest["sources"]}
    return [_python_model_asset(node, parents) for node in python_model_nodes().values()]


SPARK_PYTHON_MODELS = _assets()

# The last step of a run on Spark: it depends on every asset nothing else
# depends on, so it runs only when every step before it succeeded.
SPARK_RUN_RECORDED = dg.AssetKey(["audit", "spark_run_recorded"])


def _run_recorded_asset() -> dg.AssetsDefinition:
    from convo_warehouse.assets.dbt import dbt_models

    upstreams = {key: set(parents) for key, parents in dbt_models.asset_deps.items()}
    for asset in SPARK_PYTHON_MODELS:
        upstreams.update({key: set(parents) for key, parents in asset.asset_deps.items()})
    depended_on = {parent for parents in upstreams.values() for parent in parents}
    terminal = sorted((key for key in upstreams if key not in depended_on), key=lambda key: key.path)

    @dg.asset(
        key=SPARK_RUN_RECORDED,
        deps=terminal,
        group_name="audit",
        kinds={"python", "spark"},
        description=(
            "The run's scope and the partitions it rewrote, appended to audit.scope_runs and "
            "audit.partitions_rewritten once every step succeeded (on DuckDB one dbt invocation's "
            "on-run-end hook does it; on Spark dbt runs in several steps)."
        ),
        pool=WRITER_POOL,
    )
    def _record(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        stats = context.instance.get_run_stats(context.run.run_id)
        started = datetime.fromtimestamp(stats.start_time or stats.launch_time, tz=timezone.utc)
        context.log.info(run_spark_step(["record-run", "--since", started.strftime("%Y-%m-%d %H:%M:%S")]))
        return dg.MaterializeResult(metadata={"engine": "spark"})

    return _record


SPARK_RUN_RECORD = _run_recorded_asset()
