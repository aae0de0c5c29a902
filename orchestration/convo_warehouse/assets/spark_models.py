"""On Spark: the dbt project's Python models (the stage classifier, the statistics) as steps.

dbt-spark submits Python models only to Databricks clusters, so with
``CONVO_TARGET=spark`` they are left out of the dbt assets and run here by
``python -m convo_warehouse.spark python-models --select <model> ...`` (their
own code on DataFrames read from Spark, then their dbt data tests). The
assets keep the dbt assets' keys, groups and upstreams, so the graph is the
one DuckDB shows, and Dagster runs the dbt models between them in steps of
their own (the dbt assets are subsettable). The Python models that need no
other one (the classifier; then the four statistics models) are one step
each group: one process and one Spark start for the group.
"""

import json
from datetime import datetime, timezone

import dagster as dg

from convo_warehouse.assets.dbt import translator
from convo_warehouse.concurrency import WRITER_POOL
from convo_warehouse.lib import dbt_state
from convo_warehouse.project import dbt_project, manifest_path
from convo_warehouse.spark.target import run_spark_dbt, run_spark_step, spark_state_dir, through_thrift


def python_model_groups(nodes: dict) -> list[list[str]]:
    """The Python models (unique ids) in groups that can run as one step: a group's models need
    no Python model of a later group, and none of them needs another one of its group (through
    dbt models either), so one process runs them all once dbt built their inputs."""
    python_models = {unique_id for unique_id, node in nodes.items() if node.get("language") == "python"}
    level: dict[str, int] = {}

    def level_of(unique_id: str) -> int:
        # how many Python models lie upstream of it on one path
        if unique_id not in level:
            level[unique_id] = 0
            parents = nodes.get(unique_id, {}).get("depends_on", {}).get("nodes", [])
            level[unique_id] = max((level_of(parent) + (parent in python_models) for parent in parents), default=0)
        return level[unique_id]

    groups: dict[int, list[str]] = {}
    for unique_id in sorted(python_models):
        groups.setdefault(level_of(unique_id), []).append(unique_id)
    return [groups[number] for number in sorted(groups)]


def _python_models_asset(group: list[str], nodes: dict, parents: dict) -> dg.AssetsDefinition:
    specs = {
        unique_id: dg.AssetSpec(
            key=translator.get_asset_key(nodes[unique_id]),
            deps=[translator.get_asset_key(parents[parent]) for parent in nodes[unique_id]["depends_on"]["nodes"]],
            group_name=translator.get_group_name(nodes[unique_id]),
            kinds={"python", "spark"},
            description=nodes[unique_id].get("description") or None,
            skippable=True,
        )
        for unique_id in group
    }
    name_of = {spec.key: nodes[unique_id]["name"] for unique_id, spec in specs.items()}

    names = [nodes[unique_id]["name"] for unique_id in group]

    @dg.multi_asset(
        name="python_models__" + names[0] + (f"_and_{len(names) - 1}_more" if len(names) > 1 else ""),
        specs=list(specs.values()),
        can_subset=True,
        pool=WRITER_POOL,
    )
    def _run(context: dg.AssetExecutionContext):
        selected = sorted(name_of[key] for key in context.selected_asset_keys)
        # through a Thrift server, their dbt tests go through it as the dbt steps do
        target = ["--target", "spark_thrift"] if through_thrift() else []
        summary = run_spark_step(["python-models", *target, *(item for name in selected for item in ("--select", name))])
        context.log.info(summary)
        for key in sorted(context.selected_asset_keys, key=lambda key: key.path):
            yield dg.MaterializeResult(asset_key=key, metadata={"engine": "spark"})

    return _run


def _assets() -> list[dg.AssetsDefinition]:
    manifest = json.loads(manifest_path().read_text())
    parents = {**manifest["nodes"], **manifest["sources"]}
    return [_python_models_asset(group, manifest["nodes"], parents) for group in python_model_groups(manifest["nodes"])]


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
        since = started.strftime("%Y-%m-%d %H:%M:%S")
        if through_thrift():  # dbt through the Thrift server: no session needed
            context.log.info(run_spark_dbt(["run-operation", "record_steps_scope", "--args", json.dumps({"since": since})]))
        else:
            context.log.info(run_spark_step(["record-run", "--since", since]))
        # the next run leaves out what no load reaches if the project stays as it is (lib/dbt_state.py)
        dbt_state.keep_in(spark_state_dir(), dbt_project.project_dir, manifest_path())
        return dg.MaterializeResult(metadata={"engine": "spark"})

    return _record


SPARK_RUN_RECORD = _run_recorded_asset()
