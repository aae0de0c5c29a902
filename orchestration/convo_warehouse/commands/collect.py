"""``convo-warehouse collect``: the HTTP collector (Starlette on uvicorn)."""

from __future__ import annotations

import gc
import logging
import os

import click

from convo_warehouse.lib.access import is_loopback


def _octal_mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError as error:
        raise click.BadParameter(f"{text!r} is not an octal mode such as 0600 or 0640", param_hint="--file-mode") from error
    if mode & ~0o666 or not mode & 0o600 == 0o600:
        raise click.BadParameter(f"{text} must give the owner read and write and no execute bits",
                                 param_hint="--file-mode")
    return mode


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
@click.option("--allowed-host", "allowed_hosts", multiple=True,
              help="A Host header value to serve (repeat it). Default: loopback names when listening on "
                   "loopback, any host otherwise (tokens are required there).")
@click.option("--allowed-origin", "allowed_origins", multiple=True,
              help="A browser Origin allowed to post (repeat it). Default: none; requests without Origin "
                   "(SDKs, exporters) are not affected.")
@click.option("--body-timeout", default=10.0, show_default=True, type=float,
              help="Seconds a client has to send its whole request body (408 after).")
@click.option("--file-mode", default="0600", show_default=True,
              help="Permissions of the files written (octal); folders get the matching search bits. "
                   "0640 lets the owner's group (e.g. the loader's user) read them.")
@click.option("--keys-file", type=click.Path(dir_okay=False), default=None,
              help="The collector's keys (default: $CONVO_COLLECTOR_KEYS_FILE or data/collector_keys.json); "
                   "managed with `convo-warehouse keys`, read again when it changes.")
@click.option("--max-connections", default=1024, show_default=True, type=int,
              help="Open connections in all; at the limit a new one replaces the oldest that has not sent "
                   "its request head, else it gets 503.")
@click.option("--max-connections-per-client", default=64, show_default=True, type=int,
              help="Open connections from one client address (503 above).")
@click.option("--max-requests-per-second", default=1000.0, show_default=True, type=float,
              help="Requests per second from one client address, with bursts of twice that (429 above).")
@click.option("--header-timeout", default=5.0, show_default=True, type=float,
              help="Seconds a connection has to send a complete request head (408 and closed after).")
@click.option("--max-body-mb-in-flight", default=64.0, show_default=True, type=float,
              help="Request bodies held at once, all clients together (503 with Retry-After above).")
@click.option("--live-max-mb", default=1024.0, show_default=True, type=float,
              help="Estimated memory of the live state's conversations (the least recently active dropped above).")
@click.option("--webhook-allow-http", is_flag=True, default=False,
              help="Allow a plain-http webhook URL to a host other than loopback "
                   "(default: $CONVO_INTERVENTION_WEBHOOK_ALLOW_HTTP, off).")
@click.option("--webhook-raw-text", is_flag=True, default=False,
              help="Send the evidence's message text as written instead of masked "
                   "(default: $CONVO_INTERVENTION_WEBHOOK_RAW_TEXT, off).")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True,
              help="An address or network of a reverse proxy whose X-Forwarded-For is believed for "
                   "track-interaction's client address (repeat it; default: $CONVO_TRUSTED_PROXIES, none).")
@click.option("--live/--no-live", default=True, show_default=True,
              help="Keep the live state of conversations in progress (stages, interventions) in a worker process.")
@click.option("--intervention-rules", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Intervention rules file (default: $CONVO_INTERVENTION_RULES or the packaged one).")
@click.option("--webhook-url", default=None,
              help="Where interventions are POSTed (default: $CONVO_INTERVENTION_WEBHOOK_URL; none: not sent).")
@click.option("--live-max-conversations", default=200_000, show_default=True, type=int,
              help="Conversations kept in the live state (the least recently active is dropped above).")
@click.option("--live-max-events", default=2_000, show_default=True, type=int,
              help="Events kept per conversation (beyond, it is marked truncated and stops changing).")
@click.option("--live-rebuild-minutes", default=None, type=float,
              help="Landing files of the last this-many minutes are read back at start "
                   "(default: twice the abandonment window).")
@click.option("--live-llm/--no-live-llm", default=None,
              help="Check `llm: confirm` rules with the LLM before they fire (default: $CONVO_LIVE_LLM, off).")
def collect(host: str, port: int, landing: str | None, max_body_mb: float, max_batch_events: int,
            rotate_mb: float, rotate_seconds: float, dedupe_window: int, allowed_hosts: tuple[str, ...],
            allowed_origins: tuple[str, ...], body_timeout: float, file_mode: str, keys_file: str | None,
            max_connections: int, max_connections_per_client: int, max_requests_per_second: float,
            header_timeout: float, max_body_mb_in_flight: float, live_max_mb: float, webhook_allow_http: bool,
            webhook_raw_text: bool, trusted_proxies: tuple[str, ...], live: bool, intervention_rules: str | None,
            webhook_url: str | None, live_max_conversations: int, live_max_events: int,
            live_rebuild_minutes: float | None, live_llm: bool | None) -> None:
    """Receive events over HTTP and write them durably into the landing folder.

    POST /v1/events (contract events, batched), POST /v1/traces and
    POST /v1/logs (OTLP/HTTP, protobuf or JSON: GenAI spans and log events),
    POST /api/track-interaction (a chat widget's call), GET
    /v1/conversations/{id} and GET /v1/conversations?active=true (the live
    state: stages, turns, sentiment, interventions), GET /healthz.
    Interventions go to CONVO_INTERVENTION_WEBHOOK_URL (signed with
    CONVO_INTERVENTION_WEBHOOK_SECRET) and into the landing folder as
    intervention_triggered events. Keys come from the keys file (`convo-warehouse
    keys --help`): ingest keys send, read keys read; CONVO_COLLECTOR_TOKENS
    (deprecated) are full-access keys. Without any key the collector only
    listens on loopback. The loader picks up finished files from
    <landing>/collector/<date>/ on the
    next `convo-warehouse run`. See docs/capture.md.
    """
    from convo_warehouse.collector.app import CollectorConfig, create_app
    from convo_warehouse.collector.interaction import InteractionSettings
    from convo_warehouse.collector.keys import LEGACY_TOKENS_ENV, KeyFileError, KeyStore, keys_path
    from convo_warehouse.collector.live import LiveConfig
    from convo_warehouse.collector.webhook import WebhookConfigError, check_webhook_url
    from convo_warehouse.lib.access import default_hosts, tokens_from_env
    from convo_warehouse.lib.live.interventions import load_intervention_rules
    from convo_warehouse.lib.live.markers import RuleError
    from convo_warehouse.lib.live.state import LiveSettings
    from convo_warehouse.lib.server_limits import ClientLimits, serve
    from convo_warehouse.lib.warehouse import landing_path

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    legacy = tokens_from_env(LEGACY_TOKENS_ENV)
    try:
        keys = KeyStore(keys_path(keys_file), legacy)
    except KeyFileError as error:
        raise click.ClickException(str(error)) from None
    if not keys.configured and not is_loopback(host):
        raise click.ClickException(
            f"refusing to listen on {host} without keys: create one with `convo-warehouse keys create "
            f"--scope ingest` (keys file {keys.path}), or listen on 127.0.0.1."
        )
    if legacy:
        click.echo(f"collector: {LEGACY_TOKENS_ENV} is deprecated: its {len(legacy)} token(s) are full-access keys "
                   "(send and read, every agent). Create scoped keys with `convo-warehouse keys create` and "
                   f"remove {LEGACY_TOKENS_ENV}.", err=True)
    if not keys.configured:
        click.echo("collector: no keys (keys file missing, CONVO_COLLECTOR_TOKENS unset); accepting "
                   "unauthenticated requests on loopback.", err=True)
    flag = lambda name: os.environ.get(name, "0").strip().lower() in ("1", "true", "yes")  # noqa: E731
    webhook_url = webhook_url or os.environ.get("CONVO_INTERVENTION_WEBHOOK_URL") or None
    allow_http = webhook_allow_http or flag("CONVO_INTERVENTION_WEBHOOK_ALLOW_HTTP")
    if webhook_url and live:
        try:
            check_webhook_url(webhook_url, allow_http)
        except WebhookConfigError as error:
            raise click.ClickException(f"{error} (--webhook-url / CONVO_INTERVENTION_WEBHOOK_URL)") from None
    try:
        interaction = InteractionSettings(
            keep_full_ip=flag("CONVO_TRACK_FULL_IP"),
            trusted_proxies=InteractionSettings.networks(
                trusted_proxies or [item for item in os.environ.get("CONVO_TRUSTED_PROXIES", "").split(",")
                                    if item.strip()]))
    except ValueError as error:
        raise click.ClickException(f"{error} (--trusted-proxy / CONVO_TRUSTED_PROXIES)") from None
    landing_dir = landing_path(landing)
    landing_dir.mkdir(parents=True, exist_ok=True)
    config = CollectorConfig(
        landing_dir=landing_dir,
        keys=keys,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_body_bytes_in_flight=int(max_body_mb_in_flight * 1024 * 1024),
        max_batch_events=max_batch_events,
        dedupe_window=dedupe_window,
        rotate_bytes=int(rotate_mb * 1024 * 1024),
        rotate_seconds=rotate_seconds,
        body_timeout=body_timeout,
        allowed_hosts=allowed_hosts or default_hosts(host),
        allowed_origins=allowed_origins,
        file_mode=_octal_mode(file_mode),
        limits=ClientLimits(header_timeout=header_timeout, max_connections=max_connections,
                            max_connections_per_client=max_connections_per_client,
                            requests_per_second=max_requests_per_second,
                            burst=max(1, int(2 * max_requests_per_second))),
        interaction=interaction,
    )
    if live:
        try:
            load_intervention_rules(intervention_rules)  # a broken rules file stops here, not in the worker
        except RuleError as error:
            raise click.ClickException(f"{error}\nFix the rule, or start with --no-live.") from error
        llm = live_llm if live_llm is not None else os.environ.get("CONVO_LIVE_LLM", "0").lower() in ("1", "true")
        config.live = LiveConfig(
            landing_dir=landing_dir, subfolder=config.subfolder, file_mode=config.file_mode,
            rotate_bytes=config.rotate_bytes, rotate_seconds=config.rotate_seconds,
            settings=LiveSettings(max_conversations=live_max_conversations, max_events=live_max_events,
                                  max_bytes=int(live_max_mb * 1024 * 1024),
                                  evidence_raw_text=webhook_raw_text or flag("CONVO_INTERVENTION_WEBHOOK_RAW_TEXT")),
            intervention_rules=intervention_rules, webhook_url=webhook_url,
            webhook_secrets=tokens_from_env("CONVO_INTERVENTION_WEBHOOK_SECRET"),
            webhook_authorization=os.environ.get("CONVO_INTERVENTION_WEBHOOK_AUTHORIZATION") or None,
            webhook_allow_http=allow_http,
            rebuild_seconds=live_rebuild_minutes * 60 if live_rebuild_minutes else None, llm=llm,
            llm_timeout=float(os.environ.get("CONVO_LIVE_LLM_TIMEOUT") or 10),
            llm_concurrency=int(os.environ.get("CONVO_LIVE_LLM_CONCURRENCY") or 4),
        )
        if webhook_url and not config.live.webhook_secrets:
            click.echo("collector: CONVO_INTERVENTION_WEBHOOK_SECRET is not set: interventions are sent unsigned, "
                       "so a receiver cannot tell them from forged ones.", err=True)
    click.echo(f"collector: http://{host}:{port} -> {landing_dir}/{config.subfolder}/<date>/"
               + (" (live state on)" if live else ""), err=True)
    app = create_app(config)
    # The garbage collector, tuned for what the collector allocates: a decoded request body is
    # thousands of dicts and lists (~5,000 for a 400-span OTLP/JSON export), freed by reference
    # counting before the answer. At CPython's default threshold (700 more objects than at the last
    # collection) they were walked 2-3 times each on the way, and every few requests a full
    # collection walked everything start-up made, the recent-id window's 200,000 entries included.
    # Frozen, what start-up made (it lives as long as the process) is never walked; at 50,000 a
    # collection starts when objects pile up, not on every request.
    gc.freeze()
    gc.set_threshold(50_000)
    serve(app, host, port, config.limits, guard=app.state.guard, log_level="warning", access_log=False,
          timeout_keep_alive=5, timeout_graceful_shutdown=10)
