"""``convo-warehouse collect``: the HTTP collector (Starlette on uvicorn)."""

from __future__ import annotations

import logging
import os

import click

from convo_warehouse.lib.access import is_loopback


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="TCP port.")
@click.option(
    "--landing",
    type=click.Path(file_okay=False),
    default=None,
    help="Landing folder to write into (default: $CONVO_LANDING_DIR or data/landing).",
)
@click.option("--max-body-mb", default=10.0, show_default=True, type=float,
              help="Largest request body accepted (413 above).")
@click.option("--max-batch-events", default=10_000, show_default=True, type=int,
              help="Most events in one request (413 above).")
@click.option("--rotate-mb", default=64.0, show_default=True, type=float,
              help="Finish a landing file when it reaches this size.")
@click.option("--rotate-seconds", default=60.0, show_default=True, type=float,
              help="Finish a landing file when it is this old (so the loader sees events soon).")
@click.option("--dedupe-window", default=200_000, show_default=True, type=int,
              help="How many recent event ids are remembered to answer 'duplicate'.")
def collect(host: str, port: int, landing: str | None, max_body_mb: float, max_batch_events: int,
            rotate_mb: float, rotate_seconds: float, dedupe_window: int) -> None:
    """Receive events over HTTP and write them durably into the landing folder.

    POST /v1/events (contract events, batched), POST /v1/traces (OTLP/JSON
    GenAI spans), GET /healthz. Bearer tokens come from CONVO_COLLECTOR_TOKENS
    (comma-separated); without tokens the collector only listens on loopback.
    The loader picks up finished files from <landing>/collector/<date>/ on the
    next `convo-warehouse run`. See docs/capture.md.
    """
    import uvicorn

    from convo_warehouse.collector.app import CollectorConfig, create_app
    from convo_warehouse.lib.warehouse import landing_path

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tokens = tuple(token.strip() for token in os.environ.get("CONVO_COLLECTOR_TOKENS", "").split(",")
                   if token.strip())
    if not tokens and not is_loopback(host):
        raise click.ClickException(
            f"refusing to listen on {host} without authentication: set CONVO_COLLECTOR_TOKENS "
            "(comma-separated bearer tokens), or listen on 127.0.0.1."
        )
    if not tokens:
        click.echo("collector: no CONVO_COLLECTOR_TOKENS set; accepting unauthenticated requests on loopback.",
                   err=True)
    landing_dir = landing_path(landing)
    landing_dir.mkdir(parents=True, exist_ok=True)
    config = CollectorConfig(
        landing_dir=landing_dir,
        tokens=tokens,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_batch_events=max_batch_events,
        dedupe_window=dedupe_window,
        rotate_bytes=int(rotate_mb * 1024 * 1024),
        rotate_seconds=rotate_seconds,
    )
    click.echo(f"collector: http://{host}:{port} -> {landing_dir}/{config.subfolder}/<date>/", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False)
