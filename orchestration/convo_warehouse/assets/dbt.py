"""Every dbt model, seed and snapshot as a Dagster asset; dbt tests as asset checks.

One ``@dbt_assets`` over the whole manifest, run as one ``dbt build``. The
translator names assets ``[schema, table]`` (``staging/stg_events``,
``marts/fct_conversations``) and maps the ``raw.events`` source to the loader
asset; the stage classifier is a dbt Python model in the same build
(``classification/classifier_runs``), so lineage reads ``raw/events ->
staging -> classification -> funnels -> marts``.

On Spark, dbt-spark cannot run Python models: they are assets of their own
(``assets/spark_models.py``) and Dagster runs this multi-asset (subsettable)
in several steps around them.
"""


import json
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import dagster as dg

from convo_warehouse.checks import suites
from convo_warehouse.concurrency import WRITER_POOL, busy_retry, is_busy_error
from convo_warehouse.lib import dbt_commands, dbt_state
from convo_warehouse.lib.dbt_process import crash_signal, without_dbt_core
from convo_warehouse.lib.warehouse import keep_open, warehouse_path, writer_lock
from convo_warehouse.project import (
    dbt_executable,
    dbt_project,
    invocation_target_path,
    manifest_path,
    prune_invocation_targets,
)
from convo_warehouse.resources import WarehouseResource
from convo_warehouse.spark.target import on_spark, spark_state_dir

with without_dbt_core():
    from dagster_dbt import (
        DagsterDbtTranslator,
        DagsterDbtTranslatorSettings,
        DbtCliResource,
        dbt_assets,
    )

# The stage classifier: a dbt Python model whose results are the
# `classification` source tables.
CLASSIFIER = dg.AssetKey(["classification", "classifier_runs"])

# dbt sources written by Python assets: dbt (schema, table) -> Dagster asset
# key. The `classification` sources keep keys of their own (classifier_runs,
# which writes them, is a dbt model, and keys are one per dbt node); the
# hourly job selects the staging views over them (jobs.py).
SOURCE_ASSET_KEYS: dict[tuple[str, str], dg.AssetKey] = {
    ("raw", "events"): dg.AssetKey(["raw", "events"]),
}

CLASSIFICATION_SOURCES = "source.convo_warehouse.classification."

# The tables of dbt sources a dbt model writes (the classifier's), by schema: the
# writer's asset key. Their checks belong to no job's selection (a source is
# not an asset a job materializes): a step runs them when it runs their writer,
# which tests what it wrote, and the hourly job (no classifier) leaves them.
SOURCE_WRITERS: dict[str, dg.AssetKey] = {"classification": CLASSIFIER}

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
        parents = node.get("depends_on", {}).get("nodes")
        if node.get("resource_type") in ("seed", "model") and not parents:
            return spec.merge_attributes(deps=[SOURCE_ASSET_KEYS[("raw", "events")]])
        if (on_spark() and node.get("resource_type") == "model"
                and parents and all(parent.startswith(CLASSIFICATION_SOURCES) for parent in parents)):
            # On Spark the classifier is a step of its own (assets/spark_models.py): the views over
            # its tables come after it, in the dbt step that follows, not in one of their own (a
            # Spark start) before the loader.
            return spec.merge_attributes(deps=[CLASSIFIER])
        return spec

    def get_asset_check_spec(
        self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetCheckSpec | None:
        """No check for a grain test: no production run runs one (``dbt_commands.GRAIN_TESTS``).
        dagster-dbt makes a check of every test of a source, whatever ``exclude`` says."""
        if dbt_commands.GRAIN_TESTS.removeprefix("tag:") in manifest["nodes"][unique_id]["config"]["tags"]:
            return None
        return super().get_asset_check_spec(asset_spec, manifest, unique_id, project)

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


# Every dbt data test is an asset check: on its model, on the loader's asset
# for the tests of the raw sources, and on the model a singular test of
# several models names in its `meta: dagster: ref:`. A test Dagster cannot
# place would be logged as a warning on every run.
translator = ConvoDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_source_tests_as_checks=True)
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
# Left out of the multi-asset on Spark: the Python models and the grain tests (dbt's selector
# finds them). On DuckDB nothing: dagster-dbt then takes every node of the manifest without a
# selector (dbt-core is not imported: lib/dbt_process.py, without_dbt_core), and the translator
# makes no check of a grain test (get_asset_check_spec).
EXCLUDED = " ".join([dbt_commands.GRAIN_TESTS, SPARK_EXCLUDED]) if on_spark() else ""
# a dbt process's crash in C code is run again once (crash_retry)
CRASH_MAX_RETRIES = 1


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool=WRITER_POOL,
    exclude=EXCLUDED,
)
def dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
) -> Iterator[Any]:
    """``dbt build`` of the selected models, seeds and their tests, against the warehouse.

    A busy warehouse (another writer holds the DuckDB file) is retried with
    exponential backoff, and dbt's process dying of a crash in C code once
    (``crash_retry``); any other dbt failure (a failing test, a SQL error)
    fails the step at once, since retrying would give the same result.
    """
    if warehouse.database != warehouse_path():
        raise dg.Failure(
            f"the warehouse resource names {warehouse.database} but dbt would write {warehouse_path()} "
            "(CONVO_DUCKDB_PATH): configure the warehouse through CONVO_DUCKDB_PATH so dbt and the "
            "Python steps write the same file"
        )
    keep_open(warehouse.database, keep=False)  # dbt's process opens the file itself
    try:
        with writer_lock(warehouse.database):
            manifest = json.loads(manifest_path().read_text())
            if on_spark():
                # the last complete Spark run kept its state (assets/spark_models.py)
                plan, left_out = None, dbt_state.left_out_if_unchanged(
                    spark_state_dir(), dbt_project.project_dir, manifest)
            else:
                plan, left_out = _prepare(context, warehouse, manifest)
            select, unselected = step_selection(manifest, context.selected_asset_keys, context.selected_asset_check_keys)
            args = dbt_commands.production_build(
                multi_step=on_spark(), select=select, exclude=[*unselected, *dbt_state.as_selection(left_out, manifest)])
            # without the context, dagster-dbt passes no selection of its own (see step_selection)
            invocation = dbt.cli(args, manifest=manifest, dagster_dbt_translator=translator, raise_on_error=False,
                                 target_path=invocation_target_path(context.op_def.name, context.run.run_id))
            if not on_spark():  # the GX suites run after this step (checks/gx_checks.py)
                suites.import_great_expectations_in_background()
            try:
                events = _step_events(context, invocation.stream())
                yield from (events if plan is None and not left_out
                            else _with_left_out(context, invocation, events, manifest, left_out))
                error = invocation.get_error()
                crashed = crash_signal(invocation.process.returncode) if error is not None else None
                if error is None and plan is not None:
                    dbt_state.keep(warehouse.database, dbt_project.project_dir, manifest_path())
            finally:
                prune_invocation_targets(context.op_def.name)
    except Exception as busy:  # the lock itself: WarehouseBusyError
        error, crashed = busy, None
    if error is None:
        if not on_spark():
            keep_open(warehouse.database)  # for the steps after dbt, until the run ends (kept_open)
        if CLASSIFIER in context.selected_asset_keys and not on_spark():
            _log_classifier_run(context, warehouse)
        return
    if is_busy_error(error):
        raise busy_retry(context, error) from error
    if crashed is not None:
        raise crash_retry(context, crashed) from error
    raise error


def crash_retry(context, crashed) -> dg.RetryRequested | dg.Failure:
    """dbt's process died of ``crashed``, a fault in C code (``CRASH_SIGNALS``), not of a dbt
    error: the step runs again, once. A build that did not end recorded nothing, so the next one
    covers the same scope (docs/incremental.md); a second crash fails the step."""
    if context.retry_number >= CRASH_MAX_RETRIES:
        return dg.Failure(f"dbt's process died of {crashed.name} (a crash in C code, not a dbt error) "
                          f"in {CRASH_MAX_RETRIES + 1} attempts: every thread's stack is in the step's output")
    context.log.warning(f"dbt's process died of {crashed.name} (a crash in C code, not a dbt error; every "
                        "thread's stack is in the step's output): the build runs again, from what it committed")
    return dg.RetryRequested(max_retries=CRASH_MAX_RETRIES)


def _prepare(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, manifest: Mapping
) -> tuple[dbt_state.Plan, list[str]]:
    """Before dbt: compare the project (``manifest``, parsed for this run) with the last
    successful build and drop the tables of what changed, so this build builds them whole; return
    the plan and the nodes this build leaves out (lib/dbt_state.py)."""
    with warehouse.connect() as con:
        plan, dropped, left_out = dbt_state.prepare(
            con, warehouse.database, dbt_project.project_dir, manifest,
            dbt_state.dbt_ls(dbt_executable(), dbt_project.project_dir),
        )
    if plan.rebuild_all or plan.rebuilt:
        why = "no kept manifest to compare with" if plan.rebuild_all else (
            "changed since the last successful build"
            + (f" (vars: {', '.join(plan.changed_vars)})" if plan.changed_vars else "")
        )
        context.log.info(f"rebuilt whole, {why}: {', '.join(dropped) or 'nothing built yet'}")
    return plan, left_out


def step_selection(
    manifest: Mapping, selected: Collection[dg.AssetKey], selected_checks: Collection[dg.AssetCheckKey]
) -> tuple[list[str], list[str]]:
    """What a step of ``dbt_models`` that materializes ``selected`` and runs ``selected_checks``
    asks dbt to build: (``--select`` words, ``--exclude`` words).

    Of a subset (the hourly job leaves out the classifier), dagster-dbt passes one selector per
    node, and dbt matches each one against every node of the project: seconds of every hourly run
    before its first node. The same nodes in a few words: everything (``fqn:*``, with the words of
    ``EXCLUDED``) but the models and seeds not selected and the tests of the checks not selected,
    or, when the step selects fewer than it leaves out, the selected ones by name. The tests of the
    classifier's tables run in the steps that run the classifier (``SOURCE_WRITERS``).
    """
    names = {
        translator.get_asset_key(node): node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed", "snapshot")
    }
    chosen = {key for key in selected if key in dbt_models.keys}
    selected_checks = {*selected_checks, *(
        check for check in dbt_models.check_keys
        if check.asset_key not in dbt_models.keys and SOURCE_WRITERS.get(check.asset_key.path[0]) in chosen
    )}
    not_chosen = sorted(names[key] for key in dbt_models.keys - chosen)
    untested = sorted(check.name for check in dbt_models.check_keys - selected_checks)
    # the grain tests: production_build leaves them out itself
    excluded = [word for word in EXCLUDED.split() if word != dbt_commands.GRAIN_TESTS]
    if len(not_chosen) <= len(chosen):
        return ["fqn:*"], [*not_chosen, *untested, *excluded]
    # dbt selects the tests of the selected nodes itself (a test that also reads a node the step does
    # not select stays out: it would compare with what this step leaves as it was, or, on Spark,
    # with what a later step builds); by name, those of checks on other assets
    tests = sorted(check.name for check in selected_checks if check.asset_key not in chosen)
    return sorted(names[key] for key in chosen) + tests, untested


def _step_events(context: dg.AssetExecutionContext, events: Iterator[Any]) -> Iterator[Any]:
    """dagster-dbt's events of an invocation it ran without the step's context (whose selection
    ``step_selection`` made) as the step's own: an output for each built model or seed, a check
    result for each test."""
    for event in events:
        if isinstance(event, dg.AssetMaterialization):
            yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_key(event.asset_key),
                            metadata=event.metadata)
        elif isinstance(event, dg.AssetCheckEvaluation):
            yield dg.AssetCheckResult(asset_key=event.asset_key, check_name=event.check_name, passed=event.passed,
                                      severity=event.severity, metadata=event.metadata,
                                      description=event.description)
        else:
            yield event


LEFT_OUT = "no load reaches it and the project's changes did not: left as the last build left it"


def _with_left_out(
    context: dg.AssetExecutionContext, invocation: Any, events: Iterator[Any], manifest: Mapping,
    left_out: Collection[str],
) -> Iterator[Any]:
    """dbt's events, with an output for each selected model or seed the build left out (``left_out``,
    by name: a seed, a view or a static model, all unmodified: lib/dbt_state.py), so the steps
    waiting for it (the snapshot, the run's last step) run: it is up to date as the last build left
    it.

    Dagster takes a multi-asset's outputs in dependency order, and dbt reports its nodes in that
    order. A left-out node is output as soon as every model and seed it reads has been: those that
    read only what the build left out before dbt's first event, the views over what it builds
    while it builds, not all after its end, where Dagster's handling of each output would lengthen
    the step. A node dbt reports whose ancestors were not output yet (one the build left out but
    ``left_out`` does not name) has them output just before it; after a successful build, any
    node still neither built nor output is output too."""
    keys = {
        unique_id: translator.get_asset_key(node)
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed")
    }
    node_of = {key: unique_id for unique_id, key in keys.items()}
    parents = {
        unique_id: [parent for parent in manifest["nodes"][unique_id]["depends_on"].get("nodes", []) if parent in keys]
        for unique_id in keys
    }
    names = set(left_out)
    waiting = sorted(unique_id for unique_id in keys if manifest["nodes"][unique_id]["name"] in names)
    done: set[str] = set()

    def output(unique_id: str) -> Iterator[dg.Output]:
        done.add(unique_id)
        if keys[unique_id] in context.selected_asset_keys:
            yield dg.Output(
                None,
                output_name=context.assets_def.get_output_name_for_asset_key(keys[unique_id]),
                metadata={"left_out": LEFT_OUT},
            )

    def ready() -> Iterator[dg.Output]:
        progress = True
        while progress:
            progress = False
            for unique_id in waiting:
                if unique_id not in done and all(parent in done for parent in parents[unique_id]):
                    yield from output(unique_id)
                    progress = True

    def left_out_before(unique_id: str) -> Iterator[dg.Output]:
        for parent in parents[unique_id]:
            if parent not in done:
                yield from left_out_before(parent)
                yield from output(parent)

    yield from ready()
    for event in events:
        if isinstance(event, dg.Output):
            unique_id = node_of.get(context.assets_def.keys_by_output_name.get(event.output_name))
            if unique_id is not None:
                yield from left_out_before(unique_id)
                done.add(unique_id)
                yield event
                yield from ready()
                continue
        yield event
    if invocation.get_error() is None:
        for unique_id in sorted(keys):
            if unique_id not in done:
                yield from left_out_before(unique_id)
                yield from output(unique_id)


def _log_classifier_run(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> None:
    """What the stage classifier did in this build (its newest classifier_runs row)."""
    with warehouse.connect(read_only=True) as con:
        row = con.execute(
            "select classifier, classified, cached, llm_calls, fell_back_to_rules, fallback_reasons, "
            "estimated_cost_usd from classification.classifier_runs order by run_started_at desc limit 1"
        ).fetchone()
    if row is None:
        return
    mode, classified, cached, calls, fell_back, reasons, cost = row
    context.log.info(
        f"stage classifier ({mode}): {classified} classified, {cached} cached, {calls} LLM calls, "
        f"{fell_back} fell back to rules, estimated cost ${cost:.4f}"
    )
    if fell_back:
        context.log.warning(f"LLM failed for {fell_back} conversations: {reasons}")
