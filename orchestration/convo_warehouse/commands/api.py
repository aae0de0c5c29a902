"""``convo-warehouse api``: the read API (JSON over the published snapshot)."""

from __future__ import annotations

import click

from convo_warehouse.commands._reading import serving_dir_option

from convo_warehouse.lib import access


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8600, show_default=True, type=int, help="TCP port.")
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="A Host header value to serve (repeat it). Default: loopback names when listening on "
                   "loopback, any host otherwise (tokens are required there).")
@click.option("--allowed-origin", "allowed_origins", multiple=True,
              help="A browser Origin allowed to read (repeat it). Default: none; requests without Origin "
                   "(scripts, BI tools) are not affected.")
@serving_dir_option
def api(host: str, port: int, allowed_hosts: tuple[str, ...], allowed_origins: tuple[str, ...],
        serving_dir: str | None) -> None:
    """Serve metrics, funnels and experiments as JSON on http://HOST:PORT/api/.

    GET /api/metrics, /api/metrics/<name>?start=&end=&segment_type=&grain=,
    /api/segment-comparison?metric=&segment_type=, /api/funnels, /api/funnels/<name>?start=&end=&reading=, /api/experiments,
    /api/experiments/<test_name>, /api/health; filters channel, agent,
    environment, exclude_development, variant; the OpenAPI description at
    /api/openapi.json. Reads only the published snapshot, so it never blocks
    (or waits for) a pipeline run. Bearer tokens come from CONVO_API_TOKENS
    (comma-separated); without tokens it only listens on loopback. See
    docs/serving.md.
    """
    from convo_warehouse.api.app import TOKENS_ENV, ApiConfig, create_app
    from convo_warehouse.lib import serving
    from convo_warehouse.lib.server_limits import ClientLimits, serve

    tokens = access.tokens_from_env(TOKENS_ENV)
    refusal = access.refusal(host, bool(tokens), f"{TOKENS_ENV} (comma-separated bearer tokens)")
    if refusal:
        raise click.ClickException(refusal)
    folder = serving.serving_path(serving_dir)
    try:
        snapshot = serving.current_snapshot(folder)
    except serving.SnapshotNotFoundError as error:
        raise click.ClickException(str(error)) from None
    if not tokens:
        click.echo(f"api: no {TOKENS_ENV} set; answering unauthenticated requests on loopback.", err=True)
    click.echo(f"api: http://{host}:{port}/api/ (snapshot {snapshot.version} in {folder}; new snapshots are "
               "served as they are published); Ctrl-C stops it", err=True)
    config = ApiConfig(serving_dir=folder, tokens=tokens, allowed_hosts=allowed_hosts or access.default_hosts(host),
                       allowed_origins=allowed_origins)
    serve(create_app(config), host, port, ClientLimits(), log_level="warning", access_log=False)
