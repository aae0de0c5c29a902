"""The Dagster UI in a real browser: start it, open the asset graph, see our assets.

Starts ``python -m convo_warehouse.ui`` (what ``make ui`` runs) on a free port
on 127.0.0.1 with a throwaway DAGSTER_HOME and warehouse, drives Debian's
headless Chromium with Playwright, and saves screenshots into test-output/.
Skipped, with a message, only when /usr/bin/chromium is not installed
(``apt-get install -y chromium chromium-driver``; .ci/run installs it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support.pipeline import pipeline_env

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT = REPO_ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_SECONDS = 180

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium is not installed at /usr/bin/chromium "
    "(apt-get install -y chromium chromium-driver); the UI browser test needs it.",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=3) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"the UI did not answer on {url} within {START_TIMEOUT_SECONDS} s:\n{log.read_text()[-4000:]}")


def _restore_default_signals() -> None:
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    port = _free_port()
    landing = root / "landing"
    landing.mkdir()
    env = {
        **os.environ,
        # the warehouse through the worker's link and its parsed target: the
        # UI's parse is skipped when an earlier run of this worker made it
        **pipeline_env(root),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "CONVO_LANDING_DIR": str(landing),
        "CONVO_UI_HOST": "127.0.0.1",
        "CONVO_UI_PORT": str(port),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    log = root / "dagster_dev.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "convo_warehouse.ui"],
            cwd=REPO_ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one below
            preexec_fn=_restore_default_signals,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        # Stop the server we started (its process group, by its id).
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass


def _open(page, url: str, wait_for_text: str, exact: bool = True, first: bool = False) -> str:
    """Go to ``url``, wait for a text (on the ``first`` page, dismiss the first-visit community
    dialog); return the page text."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text(wait_for_text, exact=exact).first.wait_for(timeout=90_000)
    if first:  # shown once per browser profile, a moment after the first page loads (or not at all)
        with contextlib.suppress(PlaywrightTimeoutError):
            page.get_by_role("button", name="Skip").first.click(timeout=5_000)
    page.wait_for_timeout(1_500)
    return page.inner_text("body")


def test_asset_graph_lists_our_assets(ui_url):
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})

            # The global asset graph: one node per layer group, lineage between them.
            graph = _open(page, f"{ui_url}/asset-groups", "Global asset lineage", first=True)
            page.get_by_text("ingest").first.wait_for(timeout=60_000)
            graph = page.inner_text("body")
            page.screenshot(path=str(OUTPUT / "dagster_asset_graph.png"))
            for group in ("ingest", "seeds", "staging", "intermediate", "marts", "quarantine", "audit"):
                assert group in graph, f"group {group!r} missing from the asset graph"

            # The catalog lists assets by [schema, table] key.
            catalog = _open(page, f"{ui_url}/assets", "Asset name")
            page.screenshot(path=str(OUTPUT / "dagster_asset_catalog.png"))
            assert "reconciliation" in catalog
            # the stage classifier: a dbt Python model (the catalog's list renders only the rows in view)
            classifier = _open(page, f"{ui_url}/assets/classification/classifier_runs", "classifier_runs")
            assert "classifier_runs" in classifier

            # An asset page with its checks: dbt tests and the GX suite.
            checks = _open(
                page, f"{ui_url}/assets/marts/fct_conversations?view=checks", "marts_fct_conversations_suite"
            )
            page.screenshot(path=str(OUTPUT / "dagster_fct_conversations_checks.png"))
            assert "marts_fct_conversations_suite" in checks
            # a dbt data test, on the model it is declared on
            raw_checks = _open(page, f"{ui_url}/assets/audit/reconciliation?view=checks", "raw_events_suite")
            assert "blocking" in raw_checks.lower()
            assert "assert_raw_rows_reconcile" in raw_checks  # a dbt data test beside the GX suite

            # Schedules and the sensor.
            automation = _open(page, f"{ui_url}/automation", "landing_files_sensor")
            page.screenshot(path=str(OUTPUT / "dagster_automation.png"))
            assert "build_all_job_schedule" in automation
            assert "load_and_rebuild_job_schedule" in automation
        finally:
            browser.close()
    assert (OUTPUT / "dagster_asset_graph.png").stat().st_size > 10_000
