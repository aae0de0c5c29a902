"""``convo-warehouse run``: the whole pipeline on a landing folder, through Dagster."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from convo_warehouse.lib import serving
from convo_warehouse.lib.resident import every_option
from convo_warehouse.lib.warehouse import (
    WarehouseBusyError,
    busy_message,
    connect,
    landing_path,
    lock_holders,
    warehouse_path,
    writer_lock,
)


@click.command()
@click.option(
    "--landing",
    type=click.Path(file_okay=False),
    default=None,
    help="Landing folder with event files (default: $CONVO_LANDING_DIR or data/landing).",
)
@click.option(
    "--warehouse",
    type=click.Path(dir_okay=False),
    default=None,
    help="DuckDB warehouse file (default: $CONVO_DUCKDB_PATH or data/warehouse.duckdb).",
)
@click.option(
    "--classifier",
    type=click.Choice(["rules", "llm", "hybrid"]),
    default=None,
    help="Stage classifier (default: $CONVO_CLASSIFIER or rules).",
)
@click.option(
    "--job",
    type=click.Choice(["build_all_job", "load_and_rebuild_job"]),
    default="build_all_job",
    show_default=True,
    help="build_all_job: everything, the stage classifier included (the daily schedule); "
    "load_and_rebuild_job: new files and what they affect, no classifier (the hourly schedule).",
)
@click.option("--quiet", is_flag=True, help="Do not print the summary.")
@every_option(
    "The runs share this process's Dagster definitions and dbt server, so after the first they skip "
    "their start; a change to the project restarts the process."
)
def run(
    landing: str | None, warehouse: str | None, classifier: str | None, job: str, quiet: bool, every: float | None
) -> None:
    """Load new landing files and rebuild every asset (Dagster, in-process).

    Materializes the same Dagster definitions the UI shows: loader, dbt models
    and tests, stage classification, data-quality checks. When no landing file
    is new or changed and no seed, var or classifier setting changed since the
    last complete run, says so and builds nothing. Exits non-zero with a
    message when any step fails or another run is writing the warehouse
    (with --every: after three failed runs in a row).
    """
    landing_dir = landing_path(landing)
    database = warehouse_path(warehouse)
    if not landing_dir.is_dir():
        raise click.ClickException(
            f"landing folder {landing_dir} does not exist: pass --landing DIR or set CONVO_LANDING_DIR "
            "(make demo data with `convo-warehouse generate`)."
        )
    # The run's settings, set once for the process: dbt, the resources and
    # the classifier all read these.
    os.environ["CONVO_DUCKDB_PATH"] = str(database)
    os.environ["CONVO_LANDING_DIR"] = str(landing_dir)
    if classifier:
        os.environ["CONVO_CLASSIFIER"] = classifier

    if every is None:
        try:
            _run_once(database, job, quiet)
        except WarehouseBusyError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(3)
        return
    _run_every(database, landing_dir, job, quiet, every)


def _run_once(database: Path, job: str, quiet: bool) -> None:
    """One run of ``job`` on ``database``, then its summary and snapshot (unless ``quiet``)."""
    # A reader holding the warehouse open (a dashboard, a BI tool) would make
    # every writing step fail: say so now, and who it is, instead of retrying.
    if any(holder.mode in ("read", "write") for holder in lock_holders(database)):
        raise WarehouseBusyError(busy_message(database, "write"))

    started = time.monotonic()
    with writer_lock(database):
        from convo_warehouse.pipeline import PipelineError, materialize_all

        try:
            materialize_all(job_name=job, report=click.echo)
        except PipelineError as error:
            raise click.ClickException(str(error)) from error
        from convo_warehouse.spark.target import on_spark

        if on_spark():
            # the summary reads the DuckDB warehouse; Spark's tables are compared instead
            click.echo("Built on the spark target; compare with DuckDB: "
                       "python -m convo_warehouse.spark compare --duckdb FILE (docs/spark.md)")
        elif not quiet:
            con = connect(database, read_only=False)
            try:
                from convo_warehouse.lib.summary import run_summary

                click.echo(run_summary(con))
            finally:
                con.close()
    try:
        snapshot = serving.current_snapshot(serving.serving_path(warehouse=database))
        click.echo(f"\nPublished snapshot {snapshot.version}: {snapshot.folder} (read it, not the warehouse)")
    except serving.SnapshotNotFoundError:
        pass
    click.echo(f"\nRun finished in {time.monotonic() - started:.1f} s; warehouse: {database}")


def _run_every(database: Path, landing_dir: Path, job: str, quiet: bool, every: float) -> None:
    """``_run_once`` now and whenever the run's inputs change (``lib/resident.py``), in this process,
    with one dbt server for every run; re-executes itself when the project changed, since its
    Dagster definitions were built from the project as it was."""
    import signal
    import threading

    from convo_warehouse.lib.dbt_process import dbt_server, preload_manifest
    from convo_warehouse.lib.resident import run_every, run_inputs
    from convo_warehouse.lib.project_files import project_fingerprint
    from convo_warehouse.project import PROJECT_DIR

    stop, restart = threading.Event(), threading.Event()
    project = project_fingerprint(PROJECT_DIR)

    def stop_after_the_run(*_) -> None:
        stop.set()

    def run_once() -> str | None:
        if project_fingerprint(PROJECT_DIR) != project:
            restart.set()
            stop.set()
            return "The project changed: restarting to load its definitions."
        try:
            _run_once(database, job, quiet)
        finally:
            # a Dagster run leaves SIGTERM and Ctrl-C raising KeyboardInterrupt: between runs they stop the loop
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, stop_after_the_run)
        # the next run's dbt (the server's standby) loads the manifest while this process waits,
        # not when that run starts
        preload_manifest()
        return None

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_after_the_run)

    with dbt_server():
        run_every(every, stop, run_once, lambda: run_inputs(landing_dir, PROJECT_DIR), failure=click.ClickException)
    if restart.is_set():
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
