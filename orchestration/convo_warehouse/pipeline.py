"""Materialize every asset in-process with the same Definitions the UI shows.

``convo-warehouse run`` and ``make run`` call ``materialize_all``; what they
run is ``build_all_job`` from ``convo_warehouse.definitions``: loader, seeds,
every dbt model with its tests, the classifier, GX suites and the alerts
check, one step after another in this process.

When nothing changed since the last complete run (no new or changed landing
file by size and mtime, same project files, seeds, vars and classifier
settings: ``lib/run_state.py``), ``materialize_all`` says so and returns
without parsing dbt or starting Dagster, so its cost does not grow with the history.

The warehouse, the landing folder and the classifier come from the process's
settings (``CONVO_DUCKDB_PATH``, ``CONVO_LANDING_DIR``, ``CONVO_CLASSIFIER``),
which the caller sets once (``convo-warehouse run`` from its options): every
step, dbt included, reads the same ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from convo_warehouse.lib.dbt_process import dbt_server, preload_manifest
from convo_warehouse.lib.long_lived import long_lived
from convo_warehouse.lib.warehouse import connect, kept_open, landing_path, warehouse_path, writer_lock
from convo_warehouse.spark.target import on_spark

if TYPE_CHECKING:
    from dagster import ExecuteInProcessResult

JOB_NAME = "build_all_job"

logger = logging.getLogger(__name__)


class PipelineError(RuntimeError):
    """A step of the pipeline failed; the message names the steps and why."""

    def __init__(self, message: str, result: ExecuteInProcessResult | None = None):
        super().__init__(message)
        self.result = result


def _failure_message(result: ExecuteInProcessResult) -> str:
    """Which steps failed and why, and which checks failed, in a few readable lines."""
    import dagster as dg

    lines = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            text = error.message.strip() if error else "unknown error"
            cause = error.cause if error else None
            while cause is not None:
                text += f"\n    caused by: {cause.message.strip()}"
                cause = cause.cause
            lines.append(f"- step {event.step_key} failed: {text}")
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            severity = evaluation.severity.value if evaluation.severity else "ERROR"
            lines.append(
                f"- check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} "
                f"failed ({severity})"
            )
    skipped = [
        event.step_key
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SKIPPED
    ]
    if skipped:
        lines.append(f"- skipped because an upstream step or blocking check failed: {', '.join(skipped)}")
    return "\n".join(lines) or "the run failed (see the Dagster logs above)"


def materialize_all(
    *,
    job_name: str = JOB_NAME,
    raise_on_error: bool = True,
    report: Callable[[str], None] = logger.info,
) -> ExecuteInProcessResult | None:
    """Run ``job_name`` (default ``build_all_job``) in-process on the configured warehouse.

    The dbt project is parsed first when it changed (``dbt parse``). Holds the
    warehouse's writer lock for the whole run; on DuckDB a dbt server
    (``lib/dbt_process.py``) lives as long as the run. Returns None, having built
    nothing, when the warehouse is up to date (``report`` gets the reason).
    Raises ``PipelineError`` naming the failed steps and checks unless
    ``raise_on_error`` is false.
    """
    from convo_warehouse.lib.run_state import quick_verdict

    log_level = os.environ.get("CONVO_LOG_LEVEL", "INFO").upper()

    warehouse = warehouse_path()
    landing = landing_path()
    # On DuckDB a dbt server imports dbt for every dbt process of the run (lib/dbt_process.py) from
    # the start, beside the up-to-date check and then Dagster's: its imports and the manifest's
    # load are the longer of the two paths that meet at dbt's first node. A run with nothing new
    # stops it unused.
    with (writer_lock(warehouse), contextlib.nullcontext() if on_spark() else dbt_server(),
          contextlib.ExitStack() as stack):
        # the up-to-date check reads DuckDB's run bookkeeping (a Spark run always builds)
        if warehouse.exists() and not on_spark():
            con = connect(warehouse)
            try:
                verdict = quick_verdict(con, landing, job_name)
            finally:
                con.close()
            if verdict.up_to_date:
                report(verdict.reason)
                return None
        # Dagster's modules, the definitions (every dbt node's asset and check) and the
        # instance live as long as the process (lib/long_lived.py)
        with long_lived():
            # Re-parse when the project changed: a manifest older than the models
            # would make Dagster's view disagree with what `dbt build` runs.
            # Imported here, not above: it imports dagster-dbt (slow), which an
            # up-to-date warehouse never needs.
            from convo_warehouse.project import ensure_manifest

            ensure_manifest()
            # the dbt server loads the manifest while Dagster starts
            preload_manifest()
            import dagster as dg

            from convo_warehouse.definitions import defs

            job = defs.resolve_job_def(job_name)
            instance = stack.enter_context(dg.DagsterInstance.ephemeral())
        if not on_spark():
            # the steps after dbt share one open warehouse (lib/warehouse.py, kept_open)
            stack.enter_context(kept_open(warehouse))
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            # Step starts/ends and results, not Dagster's debug events.
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    if raise_on_error and not result.success:
        raise PipelineError(
            f"pipeline run {result.run_id} failed:\n{_failure_message(result)}", result
        )
    return result
