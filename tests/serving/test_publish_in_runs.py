"""Publishing inside real `convo-warehouse run`s, with a BI-style reader holding the snapshot open.

A module fixture builds a warehouse with one run (which publishes the first
snapshot). Then, while a SQLAlchemy reader in another process holds the
snapshot open and queries `marts.metrics_daily` (served from day-partitioned
Parquet behind a view) in a loop (and a second loop reconnects through
`current` every time), two more runs execute: one with new
files (a new version) and one without (no new version). Every query must
succeed without waiting and both runs must succeed. Then a run failing half-way
(an invalid stage rules file) must leave the snapshot untouched, and `dbt docs generate` must
list the exposures. Every subprocess has a time limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from convo_warehouse.lib import file_modes, serving

from support.pipeline import pipeline_env

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_SECONDS = 1200
# A query that waited on a lock would fail or stall; on a busy 2-core machine
# a plain count over a small snapshot stays far below this.
MAX_QUERY_SECONDS = 2.0
PARQUET_ROWS = 50

READER = textwrap.dedent(
    """
    import json, os, sys, time
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    path, stop_file, out = sys.argv[1:4]
    url = f"duckdb:///{path}"
    query = sqlalchemy.text("select count(*), sum(value) from marts.metrics_daily")
    held, fresh = [], []

    def timed(connection, results):
        started = time.monotonic()
        try:
            count, total = connection.execute(query).one()
            results.append({"ok": True, "seconds": time.monotonic() - started, "rows": count, "sum": total})
        except Exception as error:  # recorded, the test fails on it
            results.append({"ok": False, "seconds": time.monotonic() - started, "error": str(error)})

    holding = sqlalchemy.create_engine(url, connect_args={"read_only": True})
    reconnecting = sqlalchemy.create_engine(url, connect_args={"read_only": True}, poolclass=NullPool)
    with holding.connect() as connection:
        timed(connection, held)
        print("ready", flush=True)
        while not os.path.exists(stop_file):
            timed(connection, held)
            with reconnecting.connect() as again:
                timed(again, fresh)
            time.sleep(0.05)
    with open(out, "w") as handle:
        json.dump({"held": held, "fresh": fresh}, handle)
    """
)


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        **pipeline_env(root),
        "CONVO_LANDING_DIR": str(root / "landing"),
        "CONVO_SERVING_DIR": str(root / "serving"),
        # Low enough that the larger marts (metrics_daily among them) are served from day-partitioned
        # Parquet behind views, as a real warehouse's are.
        "CONVO_SERVING_PARQUET_ROWS": str(PARQUET_ROWS),
        "DBT_LOG_PATH": str(root / "dbt-logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def _run(root: Path, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "convo_warehouse.cli", "run", "--quiet"],
        cwd=REPO_ROOT, env={**_env(root), **settings}, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )


def _generate(root: Path, batch: str, seed: int) -> None:
    from convo_warehouse.lib.generate import generate_events

    generate_events(root / "landing" / batch, conversations=120, days=3, seed=seed, progress=False)


def _digest(folder: Path) -> dict[str, str]:
    digest = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            digest[str(path.relative_to(folder))] = "-> " + str(path.readlink())
        elif path.is_file():
            digest[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving_pipeline")
    _generate(root, "a", seed=21)
    first = _run(root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return root


def test_reader_holding_the_snapshot_never_waits_while_two_runs_execute(root, tmp_path):
    serving_dir = root / "serving"
    first = serving.current_snapshot(serving_dir)
    assert first.manifest["tests"]["status"] in ("passed", "passed_with_warnings")
    # The reader queries a view over the version's day-partitioned Parquet files.
    assert first.tables["marts.metrics_daily"]["storage"] == "parquet"
    assert first.tables["marts.metrics_daily"]["partition_by"] == "metric_date"
    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(serving_dir / "current" / "warehouse.duckdb"), str(stop), str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
        _generate(root, "b", seed=22)
        with_new_files = _run(root)
        without_new_files = _run(root)
    finally:
        stop.touch()
        try:
            reader.wait(timeout=120)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait(timeout=10)
    assert with_new_files.returncode == 0, with_new_files.stdout[-3000:] + with_new_files.stderr[-3000:]
    assert without_new_files.returncode == 0, without_new_files.stdout[-3000:] + without_new_files.stderr[-3000:]
    assert reader.returncode == 0, reader.stderr.read()

    # The run with new files published a second version; the run without, nothing.
    versions = serving.list_versions(serving_dir)
    assert len(versions) == 2 and versions[0] == first.version
    second = serving.current_snapshot(serving_dir)
    assert second.version == versions[1]
    assert second.tables["marts.fct_conversations"]["rows"] > first.tables["marts.fct_conversations"]["rows"]
    # The publish learnt what changed from audit.partitions_rewritten, which every complete run
    # writes, instead of hashing every table; what did not change is linked, not written again.
    conversations = second.manifest["changes"]["tables"]["marts.fct_conversations"]
    assert conversations["known_from"].startswith("audit.partitions_rewritten after"), conversations
    assert second.manifest["changes"]["files"]["linked"] > 0
    # Every file of both versions (written, linked, the DuckDB file) has CONVO_FILE_MODE's mode.
    modes = {oct(path.stat().st_mode & 0o777) for path in (serving_dir / "versions").rglob("*") if path.is_file()}
    assert modes == {oct(file_modes.file_mode(_env(root)))}

    results = json.loads(out.read_text())
    held, fresh = results["held"], results["fresh"]
    assert len(held) >= 20 and len(fresh) >= 20
    failures = [result for result in held + fresh if not result["ok"]]
    assert failures == []
    slowest = max(result["seconds"] for result in held + fresh)
    assert slowest < MAX_QUERY_SECONDS, f"a query took {slowest:.2f} s"
    # The held connection kept its consistent old view the whole time (a sum of doubles read from
    # several Parquet files in parallel may differ in its last bits from one query to the next)...
    first_rows = first.tables["marts.metrics_daily"]["rows"]
    assert {(result["rows"], round(result["sum"], 6)) for result in held} == {(held[0]["rows"], round(held[0]["sum"], 6))}
    assert held[0]["rows"] == first_rows
    # ...while reconnecting through `current` moved from the first version to the second.
    assert fresh[0]["rows"] == first_rows
    assert fresh[-1]["rows"] == second.tables["marts.metrics_daily"]["rows"] != first_rows


def test_failed_run_leaves_the_snapshot_untouched(root):
    """New files arrive, but the stage rules were edited into an invalid file:
    staging builds, the classifier step fails, the run exits non-zero naming the
    file, and the published snapshot stays byte for byte what it was."""
    serving_dir = root / "serving"
    before = _digest(serving_dir)
    _generate(root, "batch-after-bad-rules", seed=23)
    rules = root / "broken_stage_rules.yml"
    rules.write_text("stages:\n  not_a_stage:\n    signals: []\n")
    failed = _run(root, CONVO_STAGE_RULES=str(rules))
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert str(rules) in output and "unknown stages" in output
    assert _digest(serving_dir) == before


def test_dbt_docs_generate_lists_the_exposures(root):
    env = _env(root)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "docs", "generate", "--quiet"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    target = Path(env["DBT_TARGET_PATH"])
    manifest = json.loads((target / "manifest.json").read_text())
    exposures = {exposure["name"]: exposure for exposure in manifest["exposures"].values()}
    assert exposures["convo_dashboard"]["type"] == "dashboard"
    assert "model.convo_warehouse.fct_messages" in exposures["convo_dashboard"]["depends_on"]["nodes"]
    assert exposures["bi_metrics_daily"]["depends_on"]["nodes"] == ["model.convo_warehouse.metrics_daily"]
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.convo_warehouse.metrics_daily" in catalog["nodes"]
    assert (target / "index.html").exists()
