"""On Spark: the dbt project's Python models (the experiment statistics) as one step.

dbt-spark submits Python models only to Databricks clusters, so with
``CONVO_TARGET=spark`` they are left out of the dbt assets and run here by
``python -m convo_warehouse.spark python-models`` (their own code on
DataFrames read from Spark, then their dbt data tests). The assets keep the
dbt assets' keys, groups and upstreams, so the graph is the one DuckDB
shows and Dagster runs the dbt models after them in a later step.
"""

import dagster as dg

from convo_warehouse.assets.dbt import python_model_nodes, translator
from convo_warehouse.concurrency import WRITER_POOL
from convo_warehouse.project import manifest_path
from convo_warehouse.spark.target import run_spark_step


def _specs() -> list[dg.AssetSpec]:
    import json

    manifest = json.loads(manifest_path().read_text())
    parents = {**manifest["nodes"], **manifest["sources"]}
    return [
        dg.AssetSpec(
            translator.get_asset_key(node),
            deps=[translator.get_asset_key(parents[parent]) for parent in node["depends_on"]["nodes"]],
            group_name=translator.get_group_name(node),
            kinds={"python", "spark"},
            description=node.get("description") or None,
        )
        for node in python_model_nodes().values()
    ]


SPECS = _specs()


@dg.multi_asset(name="spark_python_models", specs=SPECS, pool=WRITER_POOL)
def spark_python_models(context: dg.AssetExecutionContext):
    """Run the Python models on Spark and their data tests."""
    summary = run_spark_step(["python-models"])
    context.log.info(summary)
    for spec in SPECS:
        yield dg.MaterializeResult(asset_key=spec.key, metadata={"engine": "spark"})
