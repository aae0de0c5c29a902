"""The read API and the read commands: their numbers, their JSON, and that they work while a run writes.

A module fixture generates a small demo and runs `convo-warehouse run` (which
publishes a snapshot). The API is tested in-process (Starlette's test client)
and as a real server on 127.0.0.1 with a free port; the CLI through its
entry point in subprocesses. The last test starts a second `convo-warehouse
run` on new data and, while it holds the warehouse, reads through every
command and the API server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from convo_warehouse.lib import serving
from convo_warehouse.lib.warehouse import lock_holders

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_SECONDS = 1200
TOKEN = "read-token-1"
# The generated data ends on a fixed day, not today: a run fails on a new
# `high` metric alert, and an hour of random data that happens to cross an
# alert's threshold on one day but not another made this file pass or fail
# by the date it ran (the negative_sentiment rule fired on 2026-11-25).
END_DATE = "2026-03-10"


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CONVO_DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "CONVO_LANDING_DIR": str(root / "landing"),
        "CONVO_SERVING_DIR": str(root / "serving"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "dbt-logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(root / "dagster_home"),
        **extra,
    }
    env.pop("CONVO_API_TOKENS", None)
    return env


def _cli(root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convo_warehouse.cli", *args], cwd=REPO_ROOT,
                          env=_env(root, **extra), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    from convo_warehouse.lib.generate import generate_events

    root = tmp_path_factory.mktemp("read-surfaces")
    (root / "dagster_home").mkdir()
    generate_events(root / "landing" / "first", conversations=900, days=5, seed=13, end_date=END_DATE, progress=False)
    run = _cli(root, "run", "--quiet")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return root


@pytest.fixture
def client(published):
    from starlette.testclient import TestClient

    from convo_warehouse.api.app import ApiConfig, create_app

    with TestClient(create_app(ApiConfig(serving_dir=published / "serving", tokens=(TOKEN,))),
                    base_url="http://127.0.0.1") as test_client:
        test_client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield test_client


def _snapshot_rows(root: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = serving.current_snapshot(root / "serving").connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- the API, in-process


def test_api_metrics_equal_metrics_daily_for_single_segments(client, published):
    for metric in ("completion_rate", "conversations", "sales_response_rate", "avg_first_response_ms"):
        expected = {
            (str(day), segment): (numerator, denominator, value)
            for day, segment, numerator, denominator, value in _snapshot_rows(
                published,
                "select metric_date, segment_value, numerator, denominator, value from marts.metrics_daily "
                "where metric_name = ? and segment_type = 'channel'",
                [metric],
            )
        }
        answer = client.get(f"/api/metrics/{metric}", params={"period": "all", "segment_type": "channel"})
        assert answer.status_code == 200, answer.text
        payload = answer.json()
        shown = {(row["period"], row["segment_value"]): (row["numerator"], row["denominator"], row["value"])
                 for row in payload["series"]}
        assert shown.keys() == expected.keys()
        for key, (numerator, denominator, value) in shown.items():
            assert numerator == pytest.approx(expected[key][0]) and value == pytest.approx(expected[key][2])
            assert denominator == expected[key][1] or denominator == pytest.approx(expected[key][1])
        info = payload["metric"]
        if info["kind"] == "count" or info["is_proportion"]:  # counts are integers, rates fractions
            assert all(isinstance(row["numerator"], int) for row in payload["series"])
        if info["is_proportion"]:
            assert all(0 <= row["value"] <= 1 for row in payload["series"])
    # one segment value over a chosen period: summed numerators over summed denominators
    days = sorted({row[0] for row in _snapshot_rows(published, "select distinct metric_date from marts.metrics_daily")})
    start, end = days[1], days[-2]
    numerator, denominator = _snapshot_rows(
        published,
        "select sum(numerator), sum(denominator) from marts.metrics_daily where metric_name = 'completion_rate' "
        "and segment_type = 'channel' and segment_value = 'web' and metric_date between ? and ?",
        [start, end],
    )[0]
    payload = client.get("/api/metrics/completion_rate", params={
        "start": str(start), "end": str(end), "segment_type": "channel", "segment_value": "web"}).json()
    [total] = payload["totals"]
    assert (total["numerator"], total["denominator"]) == (int(numerator), int(denominator))
    assert total["value"] == pytest.approx(numerator / denominator)
    assert payload["scope"]["start"] == str(start) and payload["snapshot"]["version"]


def test_api_segment_comparison_equals_the_mart(client, published):
    """v1.3: /api/segment-comparison serves marts.segment_comparison, whole or for one metric and
    segment type, counts as integers and days as YYYY-MM-DD."""
    expected = {value: (int(n), rate, p_value, best) for value, n, rate, p_value, best in _snapshot_rows(
        published, "select segment_value, sample_size, rate, p_value, is_best from marts.segment_comparison "
                   "where metric_name = 'completion_rate' and segment_type = 'channel'")}
    assert len(expected) > 1
    payload = client.get("/api/segment-comparison", params={"metric": "completion_rate", "segment_type": "channel"})
    assert payload.status_code == 200, payload.text
    rows = payload.json()["rows"]
    shown = {row["segment_value"]: (row["sample_size"], row["rate"], row["p_value"], row["is_best"]) for row in rows}
    assert shown.keys() == expected.keys()
    for value, (n, rate, p_value, best) in shown.items():
        assert (n, best) == (expected[value][0], expected[value][3]) and isinstance(n, int)
        assert rate == pytest.approx(expected[value][1])
        assert (p_value is None and expected[value][2] is None) or p_value == pytest.approx(expected[value][2])
    assert [row["rate"] for row in rows] == sorted((row["rate"] for row in rows), reverse=True)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rows[0]["period_start"])
    everything = client.get("/api/segment-comparison").json()["rows"]
    proportions = {row[0] for row in _snapshot_rows(published, "select metric_name from marts.dim_metrics where is_proportion")}
    assert {row["metric_name"] for row in everything} == proportions
    assert {"environment", "channel"} <= {row["segment_type"] for row in everything}


def test_api_funnels_read_right_and_experiments_equal_the_marts(client, published):
    listed = {funnel["funnel_name"]: funnel["counting"] for funnel in client.get("/api/funnels").json()["funnels"]}
    assert listed == {"support": "any_order", "sales": "in_order", "engagement": "in_order"}
    summary = {(funnel, stage): (reached, in_order) for funnel, stage, reached, in_order in _snapshot_rows(
        published, "select funnel_name, stage, reached, reached_in_order from marts.funnel_summary")}
    for funnel, counting in listed.items():
        for reading in ("any_order", "in_order"):
            payload = client.get(f"/api/funnels/{funnel}", params={"period": "all", "reading": reading}).json()
            view = payload["funnel"]
            assert view["counting"] == counting and view["reading"] == reading
            for stage in view["stages"]:
                assert (stage["reached"], stage["reached_in_order"]) == summary[(funnel, stage["stage"])]
                assert stage["drop_off"] >= 0 and isinstance(stage["count"], int)
                assert stage["from_previous"] is None or 0 <= stage["from_previous"] <= 1
            if funnel == "support":  # v1.3: classified stages have times, so resolution has a median time
                resolved = next(stage for stage in view["stages"] if stage["stage"] == "resolved")
                assert resolved["median_seconds_from_first_stage"] > 0
    results = _snapshot_rows(published, "select test_name, variant, sessions, conversions from marts.ab_test_results "
                                        "order by test_name, variant_order")
    payload = client.get("/api/experiments").json()
    assert [(test["test_name"], row["variant"], row["sessions"], row["conversions"])
            for test in payload["experiments"] for row in test["results"]] == results
    assert client.get(f"/api/experiments/{results[0][0]}").json()["experiment"]["test_name"] == results[0][0]


def test_api_errors_and_tokens(client):
    from starlette.testclient import TestClient

    assert client.get("/api/metrics/not_a_metric").status_code == 404
    assert "known metrics" in client.get("/api/metrics/not_a_metric").json()["error"]
    assert client.get("/api/funnels/nope").status_code == 404
    assert client.get("/api/experiments/nope").status_code == 404
    bad = client.get("/api/metrics/completion_rate", params={"start": "2026-13-01"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.json()["error"]
    assert client.get("/api/metrics/completion_rate", params={"variant": "no-colon"}).status_code == 400
    backwards = client.get("/api/metrics/completion_rate", params={"start": "2026-02-01", "end": "2026-01-01"})
    assert backwards.status_code == 400
    anonymous = TestClient(client.app, base_url="http://127.0.0.1")
    assert anonymous.get("/api/metrics").status_code == 401
    assert anonymous.get("/api/openapi.json").status_code == 401
    assert anonymous.get("/api/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert anonymous.get("/api/health").status_code == 200  # liveness needs no token
    schema = client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.") and {"/api/metrics/{name}", "/api/funnels/{name}",
                                                     "/api/experiments"} <= set(schema["paths"])
    parameters = {p["name"] for p in schema["paths"]["/api/metrics/{name}"]["get"]["parameters"]}
    assert {"start", "end", "segment_type", "channel", "exclude_development", "variant"} <= parameters


# --------------------------------------------------------------------------- the CLI's JSON


def test_every_read_command_prints_json_from_the_snapshot(published):
    funnel = _cli(published, "funnel", "--json")
    assert funnel.returncode == 0, funnel.stderr
    payload = json.loads(funnel.stdout)
    assert payload["source"]["kind"] == "snapshot"
    for view in payload["funnels"]:
        for stage in view["stages"]:
            assert isinstance(stage["count"], int) and stage["drop_off"] >= 0
            assert stage["from_previous"] is None or 0 <= stage["from_previous"] <= 1
    experiments = _cli(published, "experiments", "--json")
    assert experiments.returncode == 0, experiments.stderr
    assert all(0 <= row["conversion_rate"] <= 1 for test in json.loads(experiments.stdout) for row in test["results"]
               if row["conversion_rate"] is not None)
    patterns = _cli(published, "patterns", "--json", "--steps", "3")
    assert patterns.returncode == 0, patterns.stderr
    assert len(json.loads(patterns.stdout)["divergence"]) <= 3
    export = _cli(published, "export", "--table", "metrics_daily", "--out", str(published / "m.csv"), "--json")
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)["rows"] == len((published / "m.csv").read_text().splitlines()) - 1
    for command in ("funnel", "experiments", "patterns", "export", "api", "dashboard"):
        assert _cli(published, command, "--help").returncode == 0


# --------------------------------------------------------------------------- a real server, and while a run writes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _restore_default_signals() -> None:
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def test_reading_a_warehouse_a_writer_holds_says_why_and_where_to_read(published, tmp_path):
    """--warehouse reads that file; while a writer has it open, the command explains and points at the snapshot."""
    import shutil

    copy = tmp_path / "held.duckdb"
    shutil.copy2(published / "warehouse.duckdb", copy)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True); "
                               "time.sleep(120)", str(copy)],
        stdout=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_restore_default_signals,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        busy = _cli(published, "funnel", "--warehouse", str(copy))
        assert busy.returncode != 0 and "warehouse is busy" in busy.stderr and "snapshot" in busy.stderr
    finally:
        _stop(holder)
    read = _cli(published, "funnel", "--warehouse", str(copy), "--json")
    assert read.returncode == 0 and json.loads(read.stdout)["source"] == {
        "kind": "warehouse", "name": str(copy), "data_up_to": None}


def test_the_api_refuses_to_listen_beyond_loopback_without_tokens(published):
    refused = _cli(published, "api", "--host", "0.0.0.0", "--port", str(_free_port()))
    assert refused.returncode != 0 and "CONVO_API_TOKENS" in refused.stderr


def test_reads_work_while_a_run_holds_the_warehouse(published):
    from convo_warehouse.lib.generate import generate_events

    port = _free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "convo_warehouse.cli", "api", "--port", str(port)],
        cwd=REPO_ROOT, env=_env(published, CONVO_API_TOKENS=TOKEN), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=_restore_default_signals,
    )
    base = f"http://127.0.0.1:{port}/api"
    run = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, health = _get(f"{base}/health")
                break
            except OSError:
                assert time.monotonic() < deadline and api.poll() is None, "the API did not start"
                time.sleep(0.5)
        assert status == 200
        before = health["snapshot"]["version"]

        # new data, so the second run has real work to do
        generate_events(
            published / "landing" / "second", conversations=1500, days=3, seed=29, end_date=END_DATE, progress=False
        )
        warehouse = published / "warehouse.duckdb"
        run = subprocess.Popen(
            [sys.executable, "-m", "convo_warehouse.cli", "run", "--quiet"], cwd=REPO_ROOT, env=_env(published),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=_restore_default_signals,
        )
        deadline = time.monotonic() + 120
        while not any(holder.pid == run.pid for holder in lock_holders(warehouse)):
            assert run.poll() is None, run.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the run never took the warehouse"
            time.sleep(0.2)

        # while it holds the warehouse: every read command and the API answer from the snapshot
        answers = {
            "funnel": _cli(published, "funnel", "--json"),
            "experiments": _cli(published, "experiments", "--json"),
            "patterns": _cli(published, "patterns", "--json"),
            "export": _cli(published, "export", "--table", "funnel_summary", "--out", str(published / "f.csv")),
        }
        status, metric = _get(f"{base}/metrics/completion_rate?period=all", TOKEN)
        still_running = run.poll() is None and any(holder.pid == run.pid for holder in lock_holders(warehouse))
        for name, answer in answers.items():
            assert answer.returncode == 0, (name, answer.stderr[-2000:])
        assert status == 200 and metric["totals"][0]["value"] is not None
        assert still_running, "the run ended before the reads: the test proved nothing (make its data larger)"

        output, _ = run.communicate(timeout=RUN_TIMEOUT_SECONDS)
        assert run.returncode == 0, output[-3000:]
        # the API follows the new snapshot without a restart
        status, health = _get(f"{base}/health")
        assert status == 200 and health["snapshot"]["version"] != before
    finally:
        if run is not None and run.poll() is None:
            _stop(run)
        _stop(api)
