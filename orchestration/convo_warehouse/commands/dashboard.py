"""``convo-warehouse dashboard``: the Streamlit dashboard on the published snapshot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from convo_warehouse.commands._reading import serving_dir_option

from convo_warehouse.lib import access, serving

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8501, show_default=True, type=int, help="Port to listen on.")
@serving_dir_option
def dashboard(host: str, port: int, serving_dir: str | None) -> None:
    """Serve the dashboard on http://HOST:PORT (default 127.0.0.1:8501).

    Pages: overview, funnels (with transcripts, personal data masked),
    patterns, metrics by segment, experiments, models, alerts, data health;
    a period and filters (channel, agent, environment, experiment variant)
    in the sidebar and the URL. It reads only the published snapshot, so it
    never blocks (or waits for) a pipeline run and shows a new snapshot as
    soon as one is published. Beyond 127.0.0.1 it needs a password
    (CONVO_DASHBOARD_PASSWORD; several, comma-separated) and refuses to start
    without one.
    """
    from convo_warehouse.dashboard import PASSWORD_ENV

    refusal = access.refusal(host, bool(access.tokens_from_env(PASSWORD_ENV)), f"{PASSWORD_ENV} (the sign-in password)")
    if refusal:
        raise click.ClickException(refusal)
    folder = serving.serving_path(serving_dir)
    try:
        snapshot = serving.current_snapshot(folder)
    except serving.SnapshotNotFoundError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"dashboard on http://{host}:{port} (snapshot {snapshot.version} in {folder}); Ctrl-C stops it")
    os.environ[serving.SERVING_DIR_ENV] = str(folder)
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--global.developmentMode", "false",
        # viewers get no Deploy button or developer menu
        "--client.toolbarMode", "viewer",
    ]
    os.execv(sys.executable, command)
