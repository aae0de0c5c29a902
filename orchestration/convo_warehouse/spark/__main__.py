"""``python -m convo_warehouse.spark``: the pipeline on Spark, and the engine check.

Run from the Spark virtualenv (``make spark-venv``); see docs/spark.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from convo_warehouse.lib.resident import every_option

landing_option = click.option(
    "--landing",
    type=click.Path(path_type=Path),
    default=Path("data/landing"),
    envvar="CONVO_LANDING_DIR",
    show_default=True,
    help="Landing folder to load (the same one the DuckDB path reads).",
)


@click.group()
def main() -> None:
    """convo-warehouse on Spark (local session mode, or the cluster your profile names)."""


@main.command()
@landing_option
@every_option("The runs share this process's Spark JVM, so after the first they skip its warm-up.")
def run(landing: Path, every: float | None) -> None:
    """Load new landing files into Spark and build the dbt project there (once, or --every SECONDS)."""
    from convo_warehouse.spark.pipeline import SparkPipelineError, run_spark_pipeline, run_spark_pipeline_every

    try:
        if every is None:
            click.echo(run_spark_pipeline(landing))
            return
        import signal
        import threading

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        run_spark_pipeline_every(landing, every, stop)
    except SparkPipelineError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)


# The steps of `run` one by one: the Dagster code location runs them with
# CONVO_TARGET=spark (convo_warehouse.spark.target), dbt in between.
@main.command()
@landing_option
def load(landing: Path) -> None:
    """Load new landing files into Spark's raw tables (no dbt)."""
    from convo_warehouse.spark.landing import load_landing_spark
    from convo_warehouse.spark.session import get_spark

    click.echo(load_landing_spark(get_spark(), landing, progress=False).summary())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the classifier's statistics and table counts as JSON.")
def classify(as_json: bool) -> None:
    """Classify Spark's new or changed transcripts (CONVO_CLASSIFIER); results written to Spark."""
    import json

    from convo_warehouse.spark.pipeline import classify_on_spark
    from convo_warehouse.spark.session import get_spark

    stats, counts = classify_on_spark(get_spark())
    if as_json:
        click.echo(json.dumps({"stats": stats.as_dict(), "counts": counts}))
    else:
        click.echo(f"{stats.mode}: {stats.classified} classified, {stats.cached} cached; {counts}")


@main.command("raw-rows")
@landing_option
def raw_rows(landing: Path) -> None:
    """Print the raw rows Spark's readers give for each landing file (JSON lines; nothing is loaded)."""
    import json

    from convo_warehouse.lib.landing import discover_files, file_format
    from convo_warehouse.spark.landing import READERS
    from convo_warehouse.spark.session import get_spark

    spark = get_spark()
    for path in discover_files(landing):
        for row in READERS[file_format(path)].frame(spark, path).collect():
            click.echo(json.dumps({"source_file": path.relative_to(landing).as_posix(), **row.asDict()}))


dbt_target_option = click.option(
    "--target",
    "dbt_target",
    type=click.Choice(["spark", "spark_thrift"]),
    default="spark",
    show_default=True,
    help="The profile output dbt uses: spark (a session in this process) or spark_thrift (a Thrift server).",
)


@main.command("python-models")
@click.option("--select", "names", multiple=True, help="A Python model to run (repeat; default: all).")
@dbt_target_option
def python_models(names: tuple[str, ...], dbt_target: str) -> None:
    """Run the project's Python models on Spark in this session, then their dbt data tests
    (not the grain tests, as in production_build)."""
    from convo_warehouse.lib.dbt_commands import GRAIN_TESTS
    from convo_warehouse.spark.pipeline import SparkPipelineError, dbt, run_python_models
    from convo_warehouse.spark.session import get_spark
    from convo_warehouse.spark.target import SPARK_TARGET_PATHS

    spark = get_spark()
    try:
        dbt(["parse"], dbt_target)
        ran = run_python_models(spark, list(names) or None, SPARK_TARGET_PATHS[dbt_target])
        dbt(["test", "--select", *ran, "--exclude", GRAIN_TESTS], dbt_target)
    except SparkPipelineError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(f"Python models run in-session: {', '.join(ran)}")


@main.command("run-thrift")
@landing_option
@click.option("--port", type=int, default=None, help="The server's port on 127.0.0.1 (default $CONVO_SPARK_THRIFT_PORT or 10001).")
def run_thrift(landing: Path, port: int | None) -> None:
    """The pipeline with dbt sent to a Thrift server started here over the session's warehouse and metastore."""
    from convo_warehouse.spark.pipeline import SparkPipelineError
    from convo_warehouse.spark.thrift import ThriftServer, run_through_thrift

    from convo_warehouse.spark.thrift import free_port

    server = ThriftServer(port=port, connect_port=free_port())
    try:
        click.echo(run_through_thrift(landing, server))
    except (SparkPipelineError, RuntimeError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    finally:
        server.stop()


@main.command()
@click.option("--port", type=int, default=None, help="The Thrift port on 127.0.0.1 (default $CONVO_SPARK_THRIFT_PORT or 10001).")
@click.option("--connect-port", type=int, required=True, help="The Spark Connect port on 127.0.0.1.")
def serve(port: int | None, connect_port: int) -> None:
    """A Spark server over the session's warehouse and metastore, until stopped (Ctrl-C or SIGTERM):
    Thrift and Spark Connect on 127.0.0.1, for jobs run with CONVO_SPARK_THRIFT=running and
    CONVO_SPARK_CONNECT=sc://127.0.0.1:<connect port>. Jobs then share its warm JVM."""
    import signal

    from convo_warehouse.spark.thrift import ThriftServer

    server = ThriftServer(port=port, connect_port=connect_port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.start()
        click.echo(f"serving: Thrift on 127.0.0.1:{server.port}, Spark Connect on {server.connect_url} "
                   f"(log: {server.log})", err=True)
        server.process.wait()
        click.echo(f"error: the server exited ({server.process.returncode}): see {server.log}", err=True)
        sys.exit(1)
    except RuntimeError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    finally:
        server.stop()


@main.command("record-run")
@click.option("--since", required=True,
              help="When the run's first step started, UTC 'YYYY-MM-DD HH:MM:SS' (models built whole since then "
                   "already recorded it).")
def record_run_command(since: str) -> None:
    """Record a run whose every step succeeded in the ledgers (audit.scope_runs, audit.partitions_rewritten)."""
    from convo_warehouse.spark.pipeline import SparkPipelineError, dbt, record_run

    try:
        dbt(["parse"])
        record_run(since)
    except SparkPipelineError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo("run recorded: audit.scope_runs, audit.partitions_rewritten")


@main.command()
@click.option(
    "--duckdb",
    "duckdb_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="DuckDB warehouse built from the same landing folder.",
)
@click.option("--rel-tol", default=1e-9, show_default=True, help="Relative tolerance for doubles.")
def compare(duckdb_path: Path, rel_tol: float) -> None:
    """Compare every contract mart (and the other public day marts) and the classifier's stores on
    Spark with the DuckDB warehouse, row by row."""
    from convo_warehouse.spark.compare import compare_marts
    from convo_warehouse.spark.session import get_spark

    differences = compare_marts(get_spark(), duckdb_path, rel_tol=rel_tol)
    for relation, problems in differences.items():
        click.echo(f"{'OK  ' if not problems else 'DIFF'} {relation}")
        for problem in problems[:10]:
            click.echo(f"     {problem}")
    if any(differences.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
