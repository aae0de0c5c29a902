"""``convo-warehouse ui``: the Dagster UI on 127.0.0.1."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=3000, show_default=True, type=int, help="Port to listen on.")
def ui(host: str, port: int) -> None:
    """Start the Dagster UI (dagster dev) with the warehouse's asset graph.

    Parses the dbt project, prepares DAGSTER_HOME (default data/.dagster_home:
    telemetry off, one writing run at a time) and runs `dagster dev`. Stop it
    with Ctrl-C.
    """
    from convo_warehouse.ui import main

    main(host=host, port=port)
