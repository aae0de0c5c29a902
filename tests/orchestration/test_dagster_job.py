"""Dagster orchestration: definitions, the full in-process run, the sensor,
GX checks that block, and the alert webhook.

The full run (``built_warehouse``) is done once per module on a small
generated landing folder; the other tests build what they need themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from convo_warehouse.project import ensure_manifest, manifest_path
from support.pipeline import parse_env, pipeline_env
from support.warehouse import in_fresh_interpreter, open_warehouse, undocumented_columns

REPO_ROOT = Path(__file__).resolve().parents[2]

RAW = dg.AssetKey(["raw", "events"])
STG_EVENTS = dg.AssetKey(["staging", "stg_events"])
FCT = dg.AssetKey(["marts", "fct_conversations"])
RECONCILIATION = dg.AssetKey(["audit", "reconciliation"])
CLASSIFIER = dg.AssetKey(["classification", "classifier_runs"])


@pytest.fixture(scope="module")
def defs():
    # The warehouse path of this process's pipeline runs (the link of support/pipeline.py): the
    # in-process runs below name their warehouses by it, so their dbt reads this parse partially
    # (the parse of this process's target folder, DBT_TARGET_PATH: tests/conftest.py).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVO_DUCKDB_PATH", parse_env()["CONVO_DUCKDB_PATH"])
        ensure_manifest()
    from convo_warehouse.definitions import defs as definitions

    return definitions


@pytest.fixture()
def warehouse_env(tmp_path, monkeypatch):
    """A private warehouse file and landing folder, through the env vars the resources read."""
    landing = tmp_path / "landing"
    landing.mkdir()
    database = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("CONVO_DUCKDB_PATH", str(database))
    monkeypatch.setenv("CONVO_LANDING_DIR", str(landing))
    return database, landing


# ---------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------


def test_definitions_load_and_validate(defs):
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    for key in (RAW, STG_EVENTS, FCT, dg.AssetKey(["seeds", "event_type_aliases"])):
        assert key in keys, key
    # Sources map to the Python assets that write them, so lineage connects.
    assert RAW in graph.get(dg.AssetKey(["staging", "base_events_parsed"])).parent_keys
    assert graph.get(RAW).is_materializable
    # Groups by layer.
    assert graph.get(RAW).group_name == "ingest"
    assert graph.get(STG_EVENTS).group_name == "staging"
    assert graph.get(FCT).group_name == "marts"
    assert graph.get(dg.AssetKey(["seeds", "event_types"])).group_name == "seeds"
    # dbt tests and GX suites are asset checks.
    check_names = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    assert (RECONCILIATION, "raw_events_suite") in check_names
    assert (FCT, "marts_fct_conversations_suite") in check_names
    # (row rules are FCT's contract constraints; tests across rows remain)
    assert any(name.startswith("relationships") for asset, name in check_names)
    # Every dbt data test a production run runs is one: the raw source's tests on
    # the loader's asset, a singular test of several models on the model its meta
    # names. A test Dagster cannot place is logged as a warning on every run
    # instead. The grain tests run in `make dbt-test` only: no check.
    manifest = json.loads(manifest_path().read_text())
    tests = {
        node["name"]: "grain" in node["config"]["tags"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
    }
    checks = {name for _, name in check_names}
    assert {name for name, grain in tests.items() if not grain} - checks == set()
    assert {name for name, grain in tests.items() if grain} & checks == set()
    assert any(tests.values())
    assert (RAW, "source_not_null_raw_events_load_id") in check_names
    assert (RECONCILIATION, "assert_raw_rows_reconcile") in check_names
    # Jobs, schedules, sensor.
    assert {"load_and_rebuild_job", "build_all_job"} <= {job.name for job in defs.jobs}
    assert {schedule.name: schedule.cron_schedule for schedule in defs.schedules} == {
        "load_and_rebuild_job_schedule": "17 * * * *",
        "build_all_job_schedule": "45 2 * * *",
    }
    assert [sensor.name for sensor in defs.sensors] == ["landing_files_sensor"]
    hourly = defs.resolve_job_def("load_and_rebuild_job")
    assert CLASSIFIER not in hourly.asset_layer.executable_asset_keys
    # the views over what the classifier wrote are downstream of no loader: a new warehouse's
    # hourly run must build them too
    from convo_warehouse.jobs import CLASSIFIER_OUTPUT_VIEWS
    assert set(CLASSIFIER_OUTPUT_VIEWS) <= hourly.asset_layer.executable_asset_keys
    assert CLASSIFIER in defs.resolve_job_def("build_all_job").asset_layer.executable_asset_keys
    assert hourly.tags["convo_warehouse/writer"] == "duckdb"


@pytest.mark.parametrize("job_name", ["load_and_rebuild_job", "build_all_job"])
def test_the_dbt_step_asks_dbt_for_exactly_what_it_selects_in_a_few_words(defs, job_name):
    """assets/dbt.py ``step_selection``: what ``dbt ls`` lists for its words is the step's selected
    models and seeds and the tests of its selected checks, no more, in a few words (dagster-dbt's
    own selection of a subset names every node, which dbt matches against every node of the
    project, seconds of every hourly run). The hourly job (no classifier) leaves the tests of the
    classifier's tables to the daily job, which writes them."""
    from convo_warehouse.assets.dbt import CLASSIFIER, dbt_models, step_selection, translator
    from convo_warehouse.lib import dbt_commands

    manifest = json.loads(manifest_path().read_text())
    job = defs.resolve_job_def(job_name)
    selected = job.asset_layer.executable_asset_keys & dbt_models.keys
    checks = set(job.asset_layer.asset_graph.asset_check_keys) & dbt_models.check_keys
    select, exclude = step_selection(manifest, selected, checks)
    assert len(select) + len(exclude) <= 12, (select, exclude)

    unique_id = {translator.get_asset_key(node): unique_id for unique_id, node in manifest["nodes"].items()
                 if node["resource_type"] in ("model", "seed")}
    test_id = {node["name"]: unique_id for unique_id, node in manifest["nodes"].items()
               if node["resource_type"] == "test"}
    classifier_table_tests = {
        node["name"] for node in manifest["nodes"].values()
        if node["resource_type"] == "test" and node["depends_on"]["nodes"] and "grain" not in node["tags"]
        and all(manifest["sources"].get(parent, {}).get("source_name") == "classification"
                for parent in node["depends_on"]["nodes"])
    }
    assert classifier_table_tests
    tested = {check.name for check in checks} | (classifier_table_tests if CLASSIFIER in selected else set())
    expected = {unique_id[key] for key in selected} | {test_id[name] for name in tested}
    build = dbt_commands.production_build(select=select, exclude=exclude)
    words = build[build.index("--select") + 1], build[build.index("--exclude", 3) + 1]
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "ls", "--quiet", "--select", words[0], "--exclude", words[1],
         "--indirect-selection", build[build.index("--indirect-selection") + 1],
         "--resource-type", "model", "--resource-type", "seed", "--resource-type", "test",
         "--output", "json", "--output-keys", "unique_id"],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, **parse_env()}, check=True,
    )
    assert {json.loads(line)["unique_id"] for line in listed.stdout.splitlines() if line.startswith("{")} == expected
    assert (classifier_table_tests <= tested) == (job_name == "build_all_job")


def test_what_no_load_reaches_is_named_in_three_of_dbts_words():
    """lib/dbt_state.py: dbt selects with ``NO_LOAD_REACHES`` the very models and seeds that
    ``_reached_by_no_load`` picks, so a build leaving them all out (an hourly run of an unchanged
    project) names them in three words rather than one name each; a build leaving out fewer names
    each one."""
    from convo_warehouse.lib import dbt_state

    manifest = json.loads(ensure_manifest().read_text())
    picked = sorted(node["name"] for node in manifest["nodes"].values()
                    if node["resource_type"] in ("model", "seed") and dbt_state._reached_by_no_load(node))
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "ls", "--quiet", "--select", *dbt_state.NO_LOAD_REACHES,
         "--resource-type", "model", "--resource-type", "seed", "--output", "json", "--output-keys", "name"],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, **parse_env()}, check=True,
    )
    assert sorted(json.loads(line)["name"] for line in listed.stdout.splitlines() if line.startswith("{")) == picked
    assert {"stg_events", "event_types", "funnel_summary"} <= set(picked) and "fct_conversations" not in picked
    assert dbt_state.as_selection(list(reversed(picked)), manifest) == list(dbt_state.NO_LOAD_REACHES)
    assert dbt_state.as_selection(picked[1:], manifest) == picked[1:]


# ---------------------------------------------------------------------------
# The full job, in-process, on generated data
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1])
def test_the_dbt_step_runs_again_once_after_a_crash_and_fails_after_the_second(defs, attempt):
    from types import SimpleNamespace

    from convo_warehouse.assets.dbt import CRASH_MAX_RETRIES, crash_retry

    warnings = []
    context = SimpleNamespace(retry_number=attempt, log=SimpleNamespace(warning=warnings.append))
    outcome = crash_retry(context, signal.SIGSEGV)
    if attempt < CRASH_MAX_RETRIES:
        assert isinstance(outcome, dg.RetryRequested)
        assert outcome.max_retries == CRASH_MAX_RETRIES
        assert "SIGSEGV" in warnings[0]
    else:
        assert isinstance(outcome, dg.Failure)
        assert "SIGSEGV" in outcome.description
        assert not warnings


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory):
    from convo_warehouse.lib.generate import generate_events
    from convo_warehouse.pipeline import materialize_all

    root = tmp_path_factory.mktemp("orchestration_full")
    landing = root / "landing"
    summary = generate_events(landing, conversations=150, days=3, seed=11, progress=False)
    # One producer's bad file next to the good ones: 7 events without event_id.
    (landing / PRODUCER_FILE).parent.mkdir(parents=True)
    (landing / PRODUCER_FILE).write_text(
        "\n".join(json.dumps({k: v for k, v in _event(n, None).items() if k != "event_id"}) for n in range(7))
        + "\n"
    )
    database = root / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVO_DUCKDB_PATH", pipeline_env(root)["CONVO_DUCKDB_PATH"])
        patch.setenv("CONVO_LANDING_DIR", str(landing))
        result = materialize_all(raise_on_error=False)
    return database, landing, summary, result


def test_every_column_every_model_builds_is_described(built_warehouse):
    """The whole job built every model: each column of each, as the warehouse holds it, has a
    description in its YAML (a column a model adds without documenting it fails here)."""
    database, *_ = built_warehouse
    con = duckdb.connect(str(database), read_only=True)
    try:
        missing = undocumented_columns(json.loads(manifest_path().read_text()), con)
    finally:
        con.close()
    assert missing == {}


def test_full_job_runs_in_process_on_generated_data(built_warehouse):
    from convo_warehouse.pipeline import _failure_message

    database, _landing, summary, result = built_warehouse
    assert result.success, _failure_message(result)
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert {RAW, STG_EVENTS, FCT, CLASSIFIER} <= materialized
    # one dbt invocation builds everything, the stage classifier included
    dbt_steps = {
        event.step_key for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_START and event.step_key.startswith("dbt_models")
    }
    assert dbt_steps == {"dbt_models"}
    # that build read the run's parse (project.ensure_manifest) partially: a parse made with
    # another profile (another warehouse path) would have had it parse the whole project again
    logs = list(manifest_path().parent.glob(f"dbt_models-{result.run_id[:7]}-*/dbt.log"))
    assert len(logs) == 1
    assert "Unable to do partial parsing" not in logs[0].read_text()
    con = duckdb.connect(str(database), read_only=True)
    try:
        classified = con.execute("select sum(classified) from classification.classifier_runs").fetchone()[0]
    finally:
        con.close()
    assert classified > 0
    evaluations = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
    assert evaluations[(FCT, "marts_fct_conversations_suite")].passed
    # Every check of the job reported (none is planned that never runs).
    planned = {(key.asset_key, key.name) for key in result.job_def.asset_layer.asset_graph.asset_check_keys}
    assert planned - set(evaluations) == set()
    # The bad file: a visible warning naming it and the fix; the good files flowed on.
    raw_check = evaluations[(RECONCILIATION, "raw_events_suite")]
    assert not raw_check.passed
    assert raw_check.severity == dg.AssetCheckSeverity.WARN
    assert raw_check.metadata["critical_failures"].value == 0
    assert PRODUCER_FILE in raw_check.description
    assert "7 of 7 rows quarantined, mostly missing_required_field" in raw_check.description
    assert "seeds/field_aliases.csv" in raw_check.description
    con = duckdb.connect(str(database), read_only=True)
    try:
        raw_rows = con.execute("select count(*) from raw.events").fetchone()[0]
        conversations = con.execute("select count(*) from marts.fct_conversations").fetchone()[0]
        producer_rows = con.execute(
            "select reason, count(*) from quarantine.rejected_events where source_file = ? group by 1",
            [PRODUCER_FILE],
        ).fetchall()
        staged_files = con.execute("select count(distinct source_file) from staging.stg_events").fetchone()[0]
        suites = {
            row[0]
            for row in con.execute(
                "select distinct suite_name from audit.gx_validation_results"
            ).fetchall()
        }
    finally:
        con.close()
    # Blank JSONL lines are not rows; everything else written is.
    assert raw_rows == summary["rows_written"] + 7
    assert 0 < conversations <= 150
    assert producer_rows == [("missing_required_field", 7)]
    assert staged_files > 1
    assert {"raw_events_suite", "marts_fct_conversations_suite"} <= suites


def test_second_run_without_new_files_builds_nothing(built_warehouse, monkeypatch):
    from convo_warehouse.pipeline import materialize_all

    database, landing, _summary, _result = built_warehouse
    monkeypatch.setenv("CONVO_DUCKDB_PATH", str(database))
    monkeypatch.setenv("CONVO_LANDING_DIR", str(landing))
    said = []
    assert materialize_all(report=said.append) is None
    assert len(said) == 1 and "nothing built" in said[0]
    con = duckdb.connect(str(database), read_only=True)
    try:
        runs = con.execute(
            "select job_name, count(*) from audit.pipeline_runs where completed_at is not null group by 1"
        ).fetchall()
    finally:
        con.close()
    assert runs == [("build_all_job", 1)]


def test_a_run_with_new_data_leaves_out_what_no_load_reaches_but_tests_what_it_wrote(
    built_warehouse, tmp_path, monkeypatch
):
    """lib/dbt_state.py: on a copy of the built warehouse, a new day's file run by the hourly job
    leaves out of dbt's build what no load reaches (seeds, views, the static models computed from
    seeds alone; the project is the one the first run built) and their tests, reports them up to
    date so the steps waiting for them run, and still runs the tests of what it wrote."""
    import shutil

    from convo_warehouse.lib.generate import generate_events
    from convo_warehouse.pipeline import _failure_message, materialize_all

    database, landing, _summary, first = built_warehouse
    copy = tmp_path / "copy"
    shutil.copytree(database.parent, copy, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    # yesterday's day (new conversations on a day the history holds): a day ending now holds
    # too little of it just after midnight UTC, and the generator refuses a range under a minute
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    generate_events(copy / "landing" / "next", conversations=40, days=1, seed=12, end_date=yesterday,
                    progress=False)
    monkeypatch.setenv("CONVO_DUCKDB_PATH", pipeline_env(copy, database.name)["CONVO_DUCKDB_PATH"])
    monkeypatch.setenv("CONVO_LANDING_DIR", str(copy / landing.name))
    second = materialize_all(job_name="load_and_rebuild_job", raise_on_error=False)
    assert second is not None and second.success, _failure_message(second)

    def materialized(result) -> dict[str, dict]:
        return {
            "/".join(event.asset_key.path): event.event_specific_data.materialization.metadata
            for event in result.get_asset_materialization_events()
        }

    def checks(result) -> set[str]:
        return {evaluation.check_name for evaluation in result.get_asset_check_evaluations()}

    built, again = materialized(first), materialized(second)
    no_load_reaches = {"staging/stg_seeds__experiments", "staging/stg_seeds__funnel_stages",
                       "intermediate/int_funnel_stages_ordered", "staging/stg_events", "marts/funnel_summary"}
    assert no_load_reaches <= set(built) and not any("left_out" in built[key] for key in no_load_reaches)
    assert all("left_out" in again[key] for key in no_load_reaches), {key: again.get(key) for key in no_load_reaches}
    rebuilt = {"scope/scope_days", "marts/fct_conversations", "marts/metrics_daily", "marts/metric_alerts"}
    assert rebuilt <= set(again) and not any("left_out" in again[key] for key in rebuilt)
    # the steps waiting for every served table ran, and the run completed
    assert {"serving/snapshot", "audit/pipeline_runs"} <= set(again)
    not_run = checks(first) - checks(second)
    assert {"not_null_stg_seeds__experiments_test_name", "not_null_stg_seeds__funnel_stages_funnel_name"} <= not_run
    # the classifier's tables are tested by the daily job that wrote them, not by the hourly one
    assert "source_unique_classification_message_embeddings_event_id" in not_run
    assert not {name for name in not_run if "fct_conversations" in name or "fct_messages" in name}
    assert all(evaluation.passed for evaluation in second.get_asset_check_evaluations()
               if evaluation.severity == dg.AssetCheckSeverity.ERROR)
    skipped = {event.step_key for event in second.all_events if event.event_type == dg.DagsterEventType.STEP_SKIPPED}
    assert skipped == set()


class _ServerWhoseFirstBuildCrashes(threading.Thread):
    """A dbt server speaking ``lib/dbt_process.py``'s protocol: the first ``dbt build`` it is asked
    for "dies of SIGSEGV" (the exit status a crashed child gives), and it refuses every other
    command, which ``convo-dbt`` then runs itself."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.crashed: list[list[str]] = []
        self.stand_in = subprocess.Popen(["sleep", "600"])  # the "child" the client may signal

    def run(self) -> None:
        from convo_warehouse.lib.dbt_process import _LENGTH, _receive, _send

        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed: the test is over
                return
            with connection:
                _, streams, _, _ = socket.recv_fds(connection, 1, 3)
                for stream in streams:
                    os.close(stream)
                request = json.loads(_receive(connection))
                if request.get("preload"):
                    continue
                if request["args"][:1] == ["build"] and not self.crashed:
                    self.crashed.append(request["args"])
                    _send(connection, _LENGTH.pack(self.stand_in.pid))
                    _send(connection, _LENGTH.pack(-signal.SIGSEGV))
                else:
                    _send(connection, _LENGTH.pack(0))

    def stop(self) -> None:
        self.listener.close()
        self.stand_in.kill()
        self.stand_in.wait()


def test_a_dbt_build_that_crashes_in_c_code_runs_again_and_the_run_completes(built_warehouse, tmp_path, monkeypatch):
    """On a copy of the built warehouse, the hourly job's dbt build dies of SIGSEGV once (a dbt
    server stand-in answers so): the step runs again, the run completes, and the new day's
    conversations reach the marts."""
    import shutil
    import tempfile

    from convo_warehouse.lib import dbt_process
    from convo_warehouse.lib.generate import generate_events
    from convo_warehouse.pipeline import _failure_message, materialize_all

    database, landing, _summary, _first = built_warehouse
    copy = tmp_path / "copy"
    shutil.copytree(database.parent, copy, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    generate_events(copy / "landing" / "next", conversations=30, days=1, seed=14, end_date=yesterday, progress=False)
    day_count = f"select count(*) from marts.fct_conversations where conversation_date = date '{yesterday}'"
    before = _count(copy / database.name, day_count)
    monkeypatch.setenv("CONVO_DUCKDB_PATH", pipeline_env(copy, database.name)["CONVO_DUCKDB_PATH"])
    monkeypatch.setenv("CONVO_LANDING_DIR", str(copy / landing.name))
    folder = Path(tempfile.mkdtemp(prefix="convo-crash-"))  # a socket's path is short
    server = _ServerWhoseFirstBuildCrashes(folder / "server.sock")
    server.start()
    try:
        # the run's own dbt_server() finds this one serving (as a resident run's would)
        monkeypatch.setattr(dbt_process, "_serving", str(folder / "server.sock"))
        monkeypatch.setenv(dbt_process.SERVER_ENV, str(folder / "server.sock"))
        result = materialize_all(job_name="load_and_rebuild_job", raise_on_error=False)
    finally:
        server.stop()
        shutil.rmtree(folder)
    assert result is not None and result.success, _failure_message(result)
    assert len(server.crashed) == 1
    retried = [event for event in result.all_events
               if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY and event.step_key == "dbt_models"]
    assert len(retried) == 1
    assert _count(copy / database.name, day_count) > before
    assert _count(copy / database.name, "select count(*) from audit.pipeline_runs where completed_at is not null") == 2


def test_a_resident_run_builds_each_new_file_in_one_process_and_stops_on_sigterm(built_warehouse, tmp_path):
    """``convo-warehouse run --every``: on a copy of the built warehouse, the first check finds it up
    to date; a landing file moved in later is loaded and built by the same process (its marts
    count the new conversations); SIGTERM stops it between runs, with its dbt server."""
    import shutil
    import signal
    import time

    from convo_warehouse.lib.generate import generate_events

    database, landing, _summary, _first = built_warehouse
    copy = tmp_path / "copy"
    shutil.copytree(database.parent, copy, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    env = {**os.environ, **pipeline_env(copy, database.name), "CONVO_LANDING_DIR": str(copy / landing.name)}
    before = _count(copy / database.name, "select count(*) from marts.fct_conversations")
    resident = subprocess.Popen(
        [str(Path(sys.executable).with_name("convo-warehouse")), "run", "--every", "1", "--quiet",
         "--job", "load_and_rebuild_job"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
    )
    lines: list[str] = []

    def read_until(text: str) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = resident.stdout.readline()
            assert line, f"the resident run ended early:\n{''.join(lines[-40:])}"
            lines.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} within 300 s:\n{''.join(lines[-40:])}")

    try:
        read_until("Run finished")
        assert any("nothing built" in line for line in lines)
        yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        generate_events(tmp_path / "next", conversations=30, days=1, seed=13, end_date=yesterday, progress=False)
        (tmp_path / "next").rename(copy / landing.name / "next")  # whole files only, as a producer should
        read_until("Run finished")
        resident.send_signal(signal.SIGTERM)
        assert resident.wait(timeout=60) == 0, "".join(lines[-40:])
    finally:
        if resident.poll() is None:
            resident.kill()
            resident.wait()
    assert _count(copy / database.name, "select count(*) from marts.fct_conversations") == before + 30
    assert not [line for line in subprocess.run(["pgrep", "-f", f"dbt_process --serve .* {resident.pid}$"],
                                                capture_output=True, text=True).stdout.splitlines()]


def _count(database: Path, sql: str) -> int:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_an_up_to_date_run_imports_neither_dagster_nor_dbt(built_warehouse):
    """The up-to-date check is the whole of a no-op run: importing dagster-dbt
    (and dbt with it) would cost it several seconds at any history size."""
    database, landing, _summary, _result = built_warehouse
    probe = (
        "import sys\n"
        "from convo_warehouse.pipeline import materialize_all\n"
        "said = []\n"
        "assert materialize_all(report=said.append) is None, 'it built something'\n"
        "print(said[0])\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('dagster', 'dagster_dbt', 'dbt')))\n"
    )
    completed = in_fresh_interpreter(
        probe, env={**os.environ, "CONVO_DUCKDB_PATH": str(database), "CONVO_LANDING_DIR": str(landing)}
    )
    reason, imported = completed.stdout.strip().splitlines()[-2:]
    assert "nothing built" in reason
    assert imported == "[]"


def test_job_itself_skips_every_step_after_the_loader_when_nothing_is_new(built_warehouse, monkeypatch):
    """Launched by a schedule or from the UI (no pre-check): the loader finds nothing new
    and materializes nothing, so Dagster skips the dbt step (the classifier is in it) and the checks."""
    from convo_warehouse.definitions import defs

    database, landing, _summary, _result = built_warehouse
    monkeypatch.setenv("CONVO_DUCKDB_PATH", str(database))
    monkeypatch.setenv("CONVO_LANDING_DIR", str(landing))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("build_all_job").execute_in_process(instance=instance)
    assert result.success
    succeeded = {
        event.step_key for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_SUCCESS
    }
    skipped = {
        event.step_key for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_SKIPPED
    }
    assert succeeded == {"load_landing_files"}
    assert {"dbt_models", "audit__pipeline_runs"} <= skipped
    assert result.get_asset_materialization_events() == []


# ---------------------------------------------------------------------------
# Sensor
# ---------------------------------------------------------------------------


def _evaluate_sensor(landing: Path, cursor: str | None):
    from convo_warehouse.resources import WarehouseResource
    from convo_warehouse.sensors import landing_files_sensor

    context = dg.build_sensor_context(
        cursor=cursor, resources={"warehouse": WarehouseResource(landing_dir=str(landing))}
    )
    result = landing_files_sensor(context)
    return result.run_requests or [], result.cursor


def test_sensor_requests_a_run_per_new_file_and_none_without(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    requests, cursor = _evaluate_sensor(landing, None)
    assert requests == []  # empty folder: nothing to do

    (landing / "a.jsonl").write_text('{"event_id": "1"}\n')
    (landing / "notes.txt").write_text("not an event file")
    requests, cursor = _evaluate_sensor(landing, cursor)
    assert len(requests) == 1
    assert requests[0].run_key.startswith("landing-")

    requests, cursor = _evaluate_sensor(landing, cursor)
    assert requests == []  # the same file does not trigger twice

    (landing / "sub").mkdir()
    (landing / "sub" / "b.parquet").write_bytes(b"PAR1")
    requests, cursor = _evaluate_sensor(landing, cursor)
    assert len(requests) == 1
    requests, _ = _evaluate_sensor(landing, cursor)
    assert requests == []


# ---------------------------------------------------------------------------
# Great Expectations: the raw suite reads staging's verdicts per file
# ---------------------------------------------------------------------------

PRODUCER_FILE = "producer_x/events.jsonl"


def _event(n: int, event_id: str | None) -> dict:
    return {
        "event_id": event_id,
        "conversation_id": f"c{n // 4}",
        "event_type": "user_message",
        "timestamp": "2024-03-01T10:00:00Z",
        "properties": {"content": "hello"},
    }


def _raw_frame(**overrides) -> pd.DataFrame:
    """Per-file accounting as RAW_EVENTS_QUERY returns it: two healthy files."""
    frame = pd.DataFrame(
        {
            "load_id": [3, 3],
            "source_file": ["a.jsonl", "b.parquet"],
            "raw_rows": [100, 50],
            "parsed_rows": [100, 50],
            "valid_rows": [98, 50],
            "staged_rows": [97, 50],
            "quarantined_rows": [2, 0],
            "quarantined_share": [0.02, 0.0],
            "load_quarantined_share": [2 / 150, 2 / 150],
            "top_reason": ["unparseable_timestamp", None],
            "top_reason_detail": ["unparseable timestamp: now", None],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def test_raw_suite_passes_healthy_files_and_blocks_only_on_lost_rows():
    from convo_warehouse.checks import suites
    from convo_warehouse.checks.validation import validate

    healthy = validate(suites.raw_events_suite(), _raw_frame(), "audit/reconciliation", ["source_file"])
    assert healthy.passed

    # b.parquet: 50 raw rows but 49 reached staging -> the marts would be wrong.
    lost = validate(
        suites.raw_events_suite(), _raw_frame(parsed_rows=[100, 49]), "audit/reconciliation", ["source_file"]
    )
    assert [item.label() for item in lost.critical_failures] == [
        "expect_column_pair_values_to_be_equal(raw_rows, parsed_rows)"
    ]
    assert [row["source_file"] for row in lost.critical_failures[0].failing_rows] == ["b.parquet"]


def test_raw_suite_warns_on_a_mostly_quarantined_file_naming_it_and_the_fix():
    from convo_warehouse.checks import suites
    from convo_warehouse.checks.validation import validate

    frame = _raw_frame(
        quarantined_rows=[2, 50],
        valid_rows=[98, 0],
        staged_rows=[97, 0],
        quarantined_share=[0.02, 1.0],
        load_quarantined_share=[52 / 150, 52 / 150],
        top_reason=["unparseable_timestamp", "missing_required_field"],
        top_reason_detail=["unparseable timestamp: now", "missing required field(s): event_id"],
    )
    outcome = validate(suites.raw_events_suite(), frame, "audit/reconciliation", ["source_file"])
    assert not outcome.critical_failures
    share = [item for item in outcome.warning_failures if item.column == "quarantined_share"]
    assert share and [row["source_file"] for row in share[0].failing_rows] == ["b.parquet"]
    [line] = suites.raw_files_to_fix(frame)
    assert line.startswith("b.parquet: 50 of 50 rows quarantined, mostly missing_required_field")
    assert "seeds/field_aliases.csv" in line


def test_fct_conversations_suite_warns_of_negative_durations_and_unengaged_days_with_their_rows():
    from convo_warehouse.checks import suites
    from convo_warehouse.checks.validation import validate

    frame = pd.DataFrame(
        {
            "conversation_id": ["ok", "backwards", "quiet"],
            "conversation_date": pd.to_datetime(["2024-03-01"] * 3),
            "duration_seconds": [10.0, -3.0, None],  # backwards: ends before it starts
            "first_response_ms": [100.0, 50.0, None],
            "is_not_engaged": [0, 0, 1],
        }
    )
    outcome = validate(suites.fct_conversations_suite(), frame, "marts/fct_conversations", ["conversation_id"])
    [failure] = outcome.failed
    assert failure.severity == "warning"
    assert failure.column == "duration_seconds"
    assert failure.failing_rows == [{"conversation_id": "backwards", "duration_seconds": -3.0}]

    # two of three conversations never engaged: above the warning share
    unengaged = frame.assign(duration_seconds=[10.0, 3.0, None], is_not_engaged=[1, 1, 0])
    outcome = validate(suites.fct_conversations_suite(), unengaged, "marts/fct_conversations", ["conversation_id"])
    assert [item.label() for item in outcome.failed] == ["expect_column_mean_to_be_between(is_not_engaged)"]
    assert not outcome.critical_failures

    good = frame.assign(duration_seconds=[10.0, 3.0, None])
    assert validate(suites.fct_conversations_suite(), good, "marts/fct_conversations", ["conversation_id"]).passed


def test_metrics_daily_suite_warns_of_a_day_far_from_its_trailing_volume():
    """The suite's query over a metrics table: of the days rewritten, the
    complete ones are compared with the median of the 28 days before."""
    from convo_warehouse.checks import suites
    from convo_warehouse.checks.validation import validate_mart

    [mart] = [mart for mart in suites.MART_SUITES if mart.table == "metrics_daily"]
    con = duckdb.connect()
    con.execute("create schema marts; create schema audit")
    # ten quiet days of 100 conversations, a day of 10 (a producer stopped),
    # a normal day, and today's partial day (never checked)
    volumes = [100] * 10 + [10, 100, 3]
    con.execute(
        "create table marts.metrics_daily as select date '2024-03-01' + cast(day as integer) as metric_date, "
        "'conversations' as metric_name, 'all' as segment_type, 'all' as segment_value, "
        "cast(volume as double) as value from (select unnest(range(13)) as day, unnest(?) as volume)",
        [volumes],
    )
    outcome, missing = validate_mart(con, mart)
    assert missing == []
    [failure] = outcome.failed
    assert failure.severity == "warning"
    assert [str(row["metric_date"])[:10] for row in failure.failing_rows] == ["2024-03-11"]
    assert outcome.row_count == 11  # every complete day after the first; today left out


def test_mart_suite_flags_reached_in_order_growing_along_the_funnel():
    from convo_warehouse.checks import suites
    from convo_warehouse.checks.validation import validate

    frame = pd.DataFrame(
        {
            "funnel_name": ["support"] * 3,
            "conversation_date": pd.to_datetime(["2024-03-01"] * 3),
            "channel": ["web"] * 3,
            "stage": ["initiated", "greeted", "resolved"],
            "stage_order": [1, 2, 3],
            "conversations": [10, 10, 10],
            "reached": [10, 8, 9],
            "reached_in_order": [10, 6, 7],  # resolved: 7 in order after only 6 greeted
            "previous_reached_in_order": [None, 10, 6],
        }
    )
    outcome = validate(
        suites.funnel_stage_daily_suite(),
        frame,
        "marts/funnel_stage_daily",
        ["funnel_name", "conversation_date", "channel", "stage"],
    )
    assert [f.label() for f in outcome.critical_failures] == [
        "expect_column_pair_values_a_to_be_greater_than_b(previous_reached_in_order, reached_in_order)"
    ]
    assert outcome.critical_failures[0].failing_rows[0]["stage"] == "resolved"


def _facts_warehouse(rewritten: list[tuple[str | None, bool]]) -> duckdb.DuckDBPyConnection:
    """fct_conversations with a negative duration in c2 (2024-03-01); what its builds rewrote."""
    con = duckdb.connect()
    con.execute("create schema marts; create schema audit")
    con.execute(
        "create table marts.fct_conversations as select * from (values "
        "('c1', date '2024-03-01', 10.0, 100.0, true), "
        "('c2', date '2024-03-01', -4.0, 100.0, true), "
        "('c3', date '2024-03-02', 5.0, 50.0, true)) as t(conversation_id, conversation_date, "
        "duration_seconds, first_response_ms, engaged)"
    )
    con.execute(
        "create table audit.partitions_rewritten "
        "(relation_name varchar, partition_date date, rewrote_all boolean, recorded_at timestamp)"
    )
    for build, days in enumerate(rewritten):
        for day in days:
            con.execute(
                "insert into audit.partitions_rewritten values ('marts.fct_conversations', ?, ?, "
                "timestamp '2024-03-03' + to_seconds(?))",
                [day, day is None, build],
            )
    return con


def test_fct_conversations_suite_reads_the_days_the_latest_build_rewrote():
    """A bad row of a day the latest build did not rewrite is not read (it
    was validated when its day was built), one of a rewritten day is, and
    every row after a full build, with nothing recorded, or with
    full_history."""
    from convo_warehouse.checks import suites
    from convo_warehouse.checks.validation import validate_mart

    [mart] = [mart for mart in suites.MART_SUITES if mart.table == "fct_conversations"]

    def failing(con, **options) -> tuple[int, dict[str, list]]:
        outcome, missing = validate_mart(con, mart, **options)
        assert missing == []
        return outcome.row_count, {
            item.label(): [row["conversation_id"] for row in item.failing_rows] for item in outcome.failed
        }

    duration = "expect_column_values_to_be_between(duration_seconds)"
    # the latest build rewrote 2024-03-02 only (an earlier one 2024-03-01)
    latest_second = [["2024-03-01"], ["2024-03-02"]]
    assert failing(_facts_warehouse(latest_second)) == (1, {})
    assert failing(_facts_warehouse(latest_second), full_history=True) == (3, {duration: ["c2"]})
    assert failing(_facts_warehouse([["2024-03-02"], ["2024-03-01"]])) == (2, {duration: ["c2"]})
    assert failing(_facts_warehouse([["2024-03-01"], [None]])) == (3, {duration: ["c2"]})
    assert failing(_facts_warehouse([])) == (3, {duration: ["c2"]})


# ---------------------------------------------------------------------------
# Alerts: surfaced in Dagster and posted to the webhook
# ---------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # the name http.server dispatches to
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.received.append(
            {"content_type": self.headers["Content-Type"], "json": json.loads(body)}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def webhook(monkeypatch):
    _Recorder.received = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CONVO_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    yield _Recorder.received
    server.shutdown()
    server.server_close()


def _alerts_warehouse(database: Path, severities: list[str], clock: str = "2024-03-02 12:00:00") -> None:
    con = open_warehouse(database)
    try:
        con.execute("create schema audit; create schema marts; create schema scope")
        # The clock is the latest run's (scope_run): the lookback counts back from it.
        con.execute(f"create table scope.scope_run as select timestamp '{clock}' as clock")
        con.execute(
            """
            create table marts.metric_alerts (
                rule_name varchar, metric_name varchar, segment_type varchar,
                segment_value varchar, time_window varchar, window_start timestamp,
                window_end timestamp, condition varchar, observed_value double,
                baseline_value double, threshold double, sample_size bigint,
                baseline_sample_size bigint, min_sample bigint, severity varchar
            )
            """
        )
        for number, severity in enumerate(severities):
            con.execute(
                "insert into marts.metric_alerts values (?, 'completion_rate', 'all', 'all', '1h', "
                "timestamp '2024-03-02 11:00:00', timestamp '2024-03-02 12:00:00', 'drops_below', "
                "0.31, null, 0.5, 120, null, 20, ?)",
                [f"rule_{number}", severity],
            )
        # An old alert, outside the 24 h lookback: never announced.
        con.execute(
            "insert into marts.metric_alerts values ('old_rule', 'completion_rate', 'all', 'all', "
            "'1h', timestamp '2024-02-01 11:00:00', timestamp '2024-02-01 12:00:00', "
            "'drops_below', 0.1, null, 0.5, 120, null, 20, 'high')"
        )
    finally:
        con.close()


def _run_alert_check(database: Path, logs: list[str] | None = None):
    from convo_warehouse.checks.alerts import METRIC_ALERTS, metric_alerts_check
    from convo_warehouse.resources import WarehouseResource

    checks_defs = dg.Definitions(
        assets=[dg.AssetSpec(METRIC_ALERTS)],
        asset_checks=[metric_alerts_check],
        jobs=[
            dg.define_asset_job(
                "alerts_only", selection=dg.AssetSelection.checks_for_assets(METRIC_ALERTS)
            )
        ],
        resources={"warehouse": WarehouseResource(database_path=str(database))},
    )
    job = checks_defs.resolve_job_def("alerts_only")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        if logs is not None:
            logs.extend(entry.user_message for entry in instance.all_logs(result.run_id))
    return result, result.get_asset_check_evaluations()


def test_high_alert_is_posted_to_webhook_and_fails_the_run_once(webhook, warehouse_env):
    database, _landing = warehouse_env
    _alerts_warehouse(database, ["high", "medium"])

    result, [evaluation] = _run_alert_check(database)
    assert not result.success  # a high alert fails the run
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["new_alerts"].value == 2
    [post] = webhook
    assert post["content_type"] == "application/json"
    payload = post["json"]
    assert payload["alert_count"] == 2 and payload["high_count"] == 1
    assert {alert["rule_name"] for alert in payload["alerts"]} == {"rule_0", "rule_1"}
    assert payload["alerts"][0]["severity"] == "high"
    assert payload["alerts"][0]["observed_value"] == pytest.approx(0.31)

    # Announced once: the next run has nothing new and posts nothing.
    result, [evaluation] = _run_alert_check(database)
    assert result.success and evaluation.passed
    assert len(webhook) == 1


def test_the_alerts_lookback_counts_back_from_the_latest_runs_clock(webhook, warehouse_env):
    """The same alerts, with the latest run's clock (scope_run, its one definition) a week later:
    outside the lookback, nothing is announced."""
    database, _landing = warehouse_env
    _alerts_warehouse(database, ["high", "medium"], clock="2024-03-09 12:00:00")
    result, [evaluation] = _run_alert_check(database)
    assert result.success and evaluation.passed
    assert webhook == []


def test_medium_alert_warns_without_failing_the_run(webhook, warehouse_env):
    database, _landing = warehouse_env
    _alerts_warehouse(database, ["medium"])
    result, [evaluation] = _run_alert_check(database)
    assert result.success
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert [alert["rule_name"] for alert in webhook[0]["json"]["alerts"]] == ["rule_0"]


def test_unreachable_webhook_is_reported_not_fatal(warehouse_env, monkeypatch):
    database, _landing = warehouse_env
    _alerts_warehouse(database, ["medium"])
    # Port 9 (discard) on localhost: nothing listens there. The path is a webhook's secret.
    monkeypatch.setenv("CONVO_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/services/T0/B0/s3cretToken?key=k3y")
    logs: list[str] = []
    result, [evaluation] = _run_alert_check(database, logs)
    assert result.success
    assert evaluation.metadata["webhook"].value.startswith("failed")
    # Logged and recorded, but never with the secret part of the URL.
    [warning] = [line for line in logs if "alert webhook" in line]
    assert "http://127.0.0.1:9/<redacted> failed" in warning
    con = duckdb.connect(str(database), read_only=True)
    try:
        [[status]] = con.execute("select webhook_status from audit.alert_notifications").fetchall()
    finally:
        con.close()
    for text in [*logs, status, str(evaluation.metadata)]:
        assert "s3cretToken" not in text and "k3y" not in text


def test_webhook_urls_are_redacted_to_scheme_and_host():
    from convo_warehouse.lib.alerts import redact_error, redact_url

    assert redact_url("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/<redacted>"
    assert redact_url("https://user:pw@example.webhook.office.com:8443/webhookb2/abc?x=1") == (
        "https://example.webhook.office.com:8443/<redacted>"
    )
    assert redact_url("not a url") == "?://?/<redacted>"
    url = "https://hooks.example/secret"
    assert redact_error(url, OSError(f"cannot reach {url}")) == "cannot reach https://hooks.example/<redacted>"


def test_target_path_honours_dbt_target_path(monkeypatch, tmp_path):
    from convo_warehouse import project

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "t"))
    assert project.manifest_path() == tmp_path / "t" / "manifest.json"
    monkeypatch.delenv("DBT_TARGET_PATH")
    assert project.manifest_path() == REPO_ROOT / "target" / "manifest.json"


def test_a_parse_serves_the_profile_settings_it_was_made_with(monkeypatch, tmp_path):
    """project.ensure_manifest() parses again when a setting profiles.yml reads changed: dbt's
    build parses partially only with the profile of the saved parse, the warehouse path included."""
    import functools

    from convo_warehouse.lib import project_files
    from convo_warehouse.project import PROJECT_DIR

    parse_fingerprint = functools.partial(project_files.parse_fingerprint, PROJECT_DIR, os.environ)

    monkeypatch.setenv("CONVO_DUCKDB_PATH", str(tmp_path / "a" / "warehouse.duckdb"))
    monkeypatch.delenv("CONVO_DUCKDB_MEMORY_LIMIT", raising=False)
    first = parse_fingerprint()
    assert parse_fingerprint() == first
    # the same file name in another folder is another profile to dbt
    monkeypatch.setenv("CONVO_DUCKDB_PATH", str(tmp_path / "b" / "warehouse.duckdb"))
    assert parse_fingerprint() != first
    monkeypatch.setenv("CONVO_DUCKDB_PATH", str(tmp_path / "a" / "warehouse.duckdb"))
    monkeypatch.setenv("CONVO_DUCKDB_MEMORY_LIMIT", "1GB")
    assert parse_fingerprint() != first


def test_only_the_newest_dbt_invocation_folders_are_kept(monkeypatch, tmp_path):
    import os

    from convo_warehouse import project

    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path))
    folders = []
    for age in range(8):  # dbt_models-<run>-<id>, oldest last
        folder = tmp_path / f"dbt_models-run{age}-abc{age}"
        (folder / "compiled").mkdir(parents=True)
        (folder / "dbt.log").write_text("log")
        os.utime(folder, ns=(10**18 - age * 10**9, 10**18 - age * 10**9))
        folders.append(folder)
    other = tmp_path / "spark_models-run0-abc"
    other.mkdir()
    os.utime(other, ns=(1, 1))
    (tmp_path / "manifest.json").write_text("{}")

    deleted = project.prune_invocation_targets("dbt_models", keep=5)

    assert deleted == folders[5:]
    assert [folder.exists() for folder in folders] == [True] * 5 + [False] * 3
    assert other.exists() and (tmp_path / "manifest.json").exists()


def test_dbt_resource_reads_the_installed_version_and_opens_no_adapter(defs, monkeypatch):
    """The DuckDB runs' dbt resource skips two fixed costs of dagster-dbt: the
    `dbt --version` subprocess (its version is the installed dbt-core's, the
    executable's own answer) and the in-process adapter handle."""
    import importlib.metadata

    from dagster_dbt.core import resource as dagster_dbt_resource

    from convo_warehouse.project import dbt_executable
    from convo_warehouse.resources import ProjectDbtCliResource

    dbt = defs.resources["dbt"]
    assert isinstance(dbt, ProjectDbtCliResource)
    asked = subprocess.run([dbt_executable(), "--version"], capture_output=True, text=True, check=True).stdout

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_subprocess)
    installed = importlib.metadata.version("dbt-core")
    assert str(dbt._cli_version) == installed
    assert f"installed: {installed}" in asked
    assert dbt._initialize_dbt_core_adapter(["build"]) is None


def test_great_expectations_is_imported_in_the_background_for_the_suites():
    """The dbt step starts GX's import in a thread (the suites after it then
    find it imported); the thread swallows errors, so a wrong module name
    would only show as a slower run: checked here in a fresh interpreter."""
    script = (
        "import sys, threading\n"
        "from convo_warehouse.checks import suites\n"
        "assert 'great_expectations' not in sys.modules\n"
        "suites.import_great_expectations_in_background()\n"
        "[thread.join() for thread in threading.enumerate() if thread.name == 'import great_expectations']\n"
        "print(suites.GX_MODULE in sys.modules)\n"
    )
    completed = in_fresh_interpreter(script)
    assert completed.stdout.strip() == "True", completed.stderr[-3000:]
    assert "failed" not in completed.stderr


def test_the_modules_no_suite_uses_load_at_their_first_use():
    """GX's import leaves SciPy's stats and Altair unexecuted (a module of each that their real load
    imports is absent), a suite validates with GX so imported, and a later use of either gets the real
    module: a p-value, a chart class, the same objects as the real module's."""
    script = (
        "import sys, threading\n"
        "import pandas as pd\n"
        "from convo_warehouse.checks import suites, validation\n"
        "suites.import_great_expectations_in_background()\n"
        "[thread.join() for thread in threading.enumerate() if thread.name == 'import great_expectations']\n"
        "print(suites.GX_MODULE in sys.modules, 'scipy.stats._stats_py' in sys.modules,"
        " 'altair.vegalite' in sys.modules)\n"
        "frame = pd.DataFrame({'day': pd.to_datetime(['2026-01-01', '2026-01-02']), 'metric_name': ['m', 'm'],"
        " 'value': [1.0, None]})\n"
        "import great_expectations as gx, great_expectations.expectations as gxe\n"
        "suite = gx.ExpectationSuite(name='deferred', expectations=["
        "gxe.ExpectColumnValuesToNotBeNull(column='value', meta={'severity': 'critical'})])\n"
        "outcome = validation.validate(suite, frame, 'deferred', ['day'])\n"
        "print(outcome.passed, [result.unexpected_count for result in outcome.expectations])\n"
        "from scipy import stats\n"
        "print(stats.norm.cdf(0.0), stats.norm is sys.modules['scipy.stats'].norm)\n"
        "import altair\n"
        "print(altair.Chart is sys.modules['altair'].Chart, 'altair.vegalite' in sys.modules)\n"
    )
    completed = in_fresh_interpreter(script)
    assert completed.stdout.split("\n")[:4] == [
        "True False False", "False [1]", "0.5 True", "True True"], completed.stderr[-3000:]


def test_production_build_logs_at_info_to_file_unless_asked(monkeypatch):
    """dbt's file log at debug writes every SQL statement (a real share of
    dbt's CPU): production builds ask for info, and a
    DBT_LOG_LEVEL_FILE set by the user wins (dbt reads it itself)."""
    from convo_warehouse.lib import dbt_commands

    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    args = dbt_commands.production_build()
    assert args[args.index("--log-level-file") + 1] == "info"
    assert args[:3] == ["build", "--exclude-resource-type", "unit_test"]

    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    assert "--log-level-file" not in dbt_commands.production_build(exclude=["experiments"])


def test_production_build_leaves_out_the_grain_tests():
    """The grain tests read whole tables (make dbt-test runs them): a production build excludes
    them with the nodes it is asked to leave out, in one --exclude value (dagster-dbt reads one)."""
    from convo_warehouse.lib import dbt_commands

    args = dbt_commands.production_build()
    assert args[args.index("--exclude") + 1] == "tag:grain"
    args = dbt_commands.production_build(exclude=["dim_metrics", "event_types"])
    assert args.count("--exclude") == 1
    assert args[args.index("--exclude") + 1].split() == ["tag:grain", "dim_metrics", "event_types"]
