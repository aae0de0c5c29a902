"""``convo-warehouse classify``: classify the warehouse's transcripts without Dagster."""

from __future__ import annotations

import json

import click

from convo_warehouse.lib.warehouse import WarehouseBusyError, connect, warehouse_path, writer_lock


@click.command()
@click.option(
    "--classifier",
    type=click.Choice(["rules", "llm", "hybrid"]),
    default=None,
    help="Classifier (default: $CONVO_CLASSIFIER or rules).",
)
@click.option("--warehouse", type=click.Path(dir_okay=False), default=None,
              help="DuckDB warehouse file (default: $CONVO_DUCKDB_PATH or data/warehouse.duckdb).")
@click.option("--json", "as_json", is_flag=True, help="Print the run statistics as JSON.")
def classify(classifier: str | None, warehouse: str | None, as_json: bool) -> None:
    """Classify new or changed transcripts into classification.stage_classifications.

    Only conversations whose transcript, rules version, prompt version or model
    changed are classified; the rest are cached. Rebuild the funnel marts
    afterwards (`convo-warehouse run` does both).
    """
    from convo_warehouse.lib.classify.runner import classify_warehouse

    path = warehouse_path(warehouse)
    try:
        with writer_lock(path):
            con = connect(path)
            try:
                stats = classify_warehouse(con, classifier)
            finally:
                con.close()
    except WarehouseBusyError as error:
        raise click.ClickException(str(error)) from None
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(stats.as_dict(), indent=2))
    else:
        click.echo(
            f"{stats.mode}: {stats.conversations} conversations, {stats.classified} classified, "
            f"{stats.cached} cached; llm calls {stats.llm_calls} ({stats.llm_failed_calls} failed), "
            f"fell back to rules {stats.fell_back_to_rules}, est. cost ${stats.cost_usd:.4f}, "
            f"{stats.seconds:.1f}s"
        )
