"""CONVO_TARGET=spark: the Dagster code location runs dbt, the loader, the classifier
and the Python models on Spark, without opening the DuckDB warehouse.

No Spark needed: a stand-in Spark virtualenv (CONVO_SPARK_VENV) whose ``python``
records its arguments and answers as ``python -m convo_warehouse.spark`` would.
The Spark run itself is checked by ``make test-spark``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from convo_warehouse.assets.ingest import RAW_EVENTS, load_landing_files
from convo_warehouse.resources import WarehouseResource
from convo_warehouse.spark.target import SparkStepError, run_spark_step

REPO_ROOT = Path(__file__).resolve().parents[2]

CLASSIFY_ANSWER = {
    "stats": {"mode": "rules", "conversations": 5, "classified": 3, "cached": 2},
    "counts": {"stage_rows": 25, "stage_rows_reached": 11, "sentiment_rows": 7, "judgment_rows": 0},
}


@pytest.fixture(autouse=True, scope="module")
def _project_parsed(manifest) -> None:
    """The code location reads the session's parse of the project (``DBT_TARGET_PATH``,
    tests/conftest.py): made here when this file runs before any other that parses."""


def fake_spark_venv(root: Path, answer: str = "", exit_code: int = 0) -> Path:
    """A venv stand-in: bin/dbt exists; bin/python appends its arguments to calls.txt."""
    venv = root / "fake-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "dbt").write_text("#!/bin/sh\nexit 0\n")
    (venv / "bin" / "python").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{venv}/calls.txt"\n'
        f"cat <<'ANSWER'\n{answer}\nANSWER\n"
        "echo 'step failed: the metastore is locked' >&2\n"
        f"exit {exit_code}\n"
    )
    for name in ("dbt", "python"):
        (venv / "bin" / name).chmod(0o755)
    return venv


def calls(venv: Path) -> list[str]:
    path = venv / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def load_definitions(env: dict[str, str]) -> dict:
    """Import the code location in a fresh process (the target is read at import)."""
    script = """
import json
from convo_warehouse.definitions import defs
from convo_warehouse.assets.dbt import dbt_models, python_model_nodes
graph = defs.resolve_asset_graph()
dbt = defs.resources["dbt"]
print(json.dumps({
    "target": dbt.target,
    "dbt_executable": dbt.dbt_executable,
    # dagster-dbt's handle on the target's adapter, which this project never opens in this process
    "adapter_handle": dbt._initialize_dbt_core_adapter(["build"]) is not None,
    "python_models": [node["schema"] + "/" + node["alias"] for node in python_model_nodes().values()],
    "dbt_keys": sorted(key.to_user_string() for key in dbt_models.keys),
    "all_keys": sorted(key.to_user_string() for key in graph.get_all_asset_keys()),
    "checks": len(list(graph.asset_check_keys)),
}))
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_definitions_on_spark_use_the_spark_dbt_and_run_python_models_as_a_spark_step(tmp_path):
    venv = fake_spark_venv(tmp_path)
    base = {key: value for key, value in os.environ.items() if key != "CONVO_TARGET"}
    duck = load_definitions(base)
    spark = load_definitions({**base, "CONVO_TARGET": "spark", "CONVO_SPARK_VENV": str(venv)})

    assert duck["target"] is None and duck["dbt_executable"] != str(venv / "bin" / "dbt")
    assert spark["target"] == "spark"
    assert spark["dbt_executable"] == str(venv / "bin" / "dbt")
    # No adapter handle in Dagster's process on either target: it has no
    # dbt-spark (the handle logged a traceback per step), and the handle only
    # serves metadata this project does not fetch.
    assert not duck["adapter_handle"] and not spark["adapter_handle"]
    python_models = spark["python_models"]
    assert python_models, "the project has Python models (experiment statistics)"
    # DuckDB: dbt runs them; Spark: the same keys, outside the dbt assets
    assert set(python_models) <= set(duck["dbt_keys"])
    assert not set(python_models) & set(spark["dbt_keys"])
    assert set(python_models) <= set(spark["all_keys"])
    # the DuckDB-only steps (serving snapshot, run bookkeeping) are not part of the Spark location
    assert "audit/pipeline_runs" in duck["all_keys"] and "audit/pipeline_runs" not in spark["all_keys"]
    # Spark's last step records the run in the ledgers (a dbt hook does it on DuckDB)
    assert set(spark["all_keys"]) - set(duck["all_keys"]) == {"audit/spark_run_recorded"}
    assert spark["checks"] < duck["checks"]


def test_definitions_refuse_spark_without_its_virtualenv(tmp_path):
    env = {**os.environ, "CONVO_TARGET": "spark", "CONVO_SPARK_VENV": str(tmp_path / "missing")}
    completed = subprocess.run(
        [sys.executable, "-c", "import convo_warehouse.definitions"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert completed.returncode != 0
    assert "make spark-venv" in completed.stderr


def spark_resources(tmp_path: Path) -> dict:
    landing = tmp_path / "landing"
    landing.mkdir()
    return {"warehouse": WarehouseResource(database_path=str(tmp_path / "w.duckdb"), landing_dir=str(landing))}


def test_the_classifier_on_spark_is_a_python_model_step_run_in_spark_not_duckdb(tmp_path, monkeypatch):
    from convo_warehouse.assets.spark_models import SPARK_PYTHON_MODELS

    venv = fake_spark_venv(tmp_path, answer="Python models run in-session: classifier_runs")
    monkeypatch.setenv("CONVO_TARGET", "spark")
    monkeypatch.setenv("CONVO_SPARK_VENV", str(venv))
    [classifier] = [
        asset for asset in SPARK_PYTHON_MODELS if dg.AssetKey(["classification", "classifier_runs"]) in asset.keys
    ]
    dependencies = {key.to_user_string() for key in classifier.asset_deps[classifier.key]}
    assert "staging/stg_events" in dependencies

    result = dg.materialize([classifier], resources=spark_resources(tmp_path))

    assert result.success
    assert calls(venv) == ["-m convo_warehouse.spark python-models --select classifier_runs"]
    assert not (tmp_path / "w.duckdb").exists(), "the DuckDB warehouse must not be opened on Spark"


class _FakeServer:
    """The job's Spark server as run_spark_step sees it (no JVM): running, serving Spark Connect."""

    process = object()
    connect_url = "sc://127.0.0.1:15002"

    def stop(self) -> None:
        raise AssertionError("a step must not stop the job's server")


def _classifier_step_on_spark(tmp_path, monkeypatch, thrift_mode: str):
    """The classifier's Spark step asset with CONVO_SPARK_THRIFT=``thrift_mode``, and a fake Spark
    virtualenv whose python records each call with the CONVO_SPARK_CONNECT it was given."""
    from convo_warehouse.assets.spark_models import SPARK_PYTHON_MODELS

    venv = fake_spark_venv(tmp_path, answer="Python models run in-session: classifier_runs")
    python = venv / "bin" / "python"
    python.write_text(python.read_text().replace('echo "$@"', 'echo "$CONVO_SPARK_CONNECT $@"', 1))
    monkeypatch.setenv("CONVO_TARGET", "spark")
    monkeypatch.setenv("CONVO_SPARK_VENV", str(venv))
    monkeypatch.setenv("CONVO_SPARK_THRIFT", thrift_mode)
    [classifier] = [
        asset for asset in SPARK_PYTHON_MODELS if dg.AssetKey(["classification", "classifier_runs"]) in asset.keys
    ]
    return classifier, venv


def test_with_the_jobs_own_server_the_python_steps_are_its_spark_connect_clients(tmp_path, monkeypatch):
    """CONVO_SPARK_THRIFT=local: the classifier's step runs with CONVO_SPARK_CONNECT naming the job's
    server (so it starts no JVM), its dbt tests go through the Thrift output, and the server keeps running."""
    from convo_warehouse.spark import target

    classifier, venv = _classifier_step_on_spark(tmp_path, monkeypatch, "local")
    monkeypatch.setattr(target, "_thrift_server", _FakeServer())
    monkeypatch.setattr(target, "start_thrift_server", lambda: None)

    assert dg.materialize([classifier], resources=spark_resources(tmp_path)).success
    assert calls(venv) == [
        "sc://127.0.0.1:15002 -m convo_warehouse.spark python-models --target spark_thrift --select classifier_runs"
    ]


def test_with_a_running_server_the_job_starts_none_and_its_steps_use_that_server(tmp_path, monkeypatch):
    """CONVO_SPARK_THRIFT=running: the dbt steps take the Thrift output, the classifier's step runs
    with the environment's CONVO_SPARK_CONNECT, and nothing starts or stops a server."""
    from convo_warehouse.spark import target

    classifier, venv = _classifier_step_on_spark(tmp_path, monkeypatch, "running")
    monkeypatch.setenv("CONVO_SPARK_CONNECT", "sc://127.0.0.1:15003")

    def no_server() -> None:
        raise AssertionError("a job on a running server must not start one")

    monkeypatch.setattr(target, "start_thrift_server", no_server)

    assert target.spark_dbt_target() == "spark_thrift"
    assert dg.materialize([classifier], resources=spark_resources(tmp_path)).success
    assert calls(venv) == [
        "sc://127.0.0.1:15003 -m convo_warehouse.spark python-models --target spark_thrift --select classifier_runs"
    ]


def test_an_unknown_thrift_mode_is_refused_naming_the_ones_there_are(monkeypatch):
    from convo_warehouse.spark import target

    monkeypatch.setenv("CONVO_SPARK_THRIFT", "cluster")
    with pytest.raises(ValueError, match="use local .*running .*or leave it unset"):
        target.spark_dbt_target()


def test_the_server_serves_spark_connect_beside_thrift_on_localhost_only(tmp_path):
    from convo_warehouse.spark.thrift import HOST, server_command

    def settings(command: list[str]) -> dict[str, str]:
        return dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "--conf")

    both = server_command(tmp_path, 10001, spark_home=tmp_path, connect_port=15002)
    assert HOST == "127.0.0.1"
    assert f"hive.server2.thrift.bind.host={HOST}" in both
    assert settings(both)["spark.plugins"] == "org.apache.spark.sql.connect.SparkConnectPlugin"
    assert settings(both)["spark.connect.grpc.binding.address"] == HOST
    assert settings(both)["spark.connect.grpc.binding.port"] == "15002"
    assert "spark.plugins" not in settings(server_command(tmp_path, 10001, spark_home=tmp_path))


def test_the_server_class_path_holds_the_hive_interface_pyspark_lacks(tmp_path):
    """The class file in the stub jar is a public interface of the missing name, extending nothing
    but Object (read back field by field), and the server starts with that jar on its class path."""
    import struct
    import zipfile

    from convo_warehouse.spark.thrift import MISSING_HIVE_INTERFACE, server_command

    command = server_command(tmp_path, 10001, spark_home=tmp_path)
    jar = Path(command[command.index("--driver-class-path") + 1])
    with zipfile.ZipFile(jar) as archive:
        assert archive.namelist() == [f"{MISSING_HIVE_INTERFACE}.class"]
        data = archive.read(f"{MISSING_HIVE_INTERFACE}.class")
    magic, _minor, major, count = struct.unpack(">IHHH", data[:10])
    assert (magic, major) == (0xCAFEBABE, 52)
    constants, position = {}, 10
    for index in range(1, count):
        tag = data[position]
        if tag == 1:  # Utf8
            (length,) = struct.unpack(">H", data[position + 1:position + 3])
            constants[index] = data[position + 3:position + 3 + length].decode()
            position += 3 + length
        else:
            assert tag == 7  # Class: its name's index
            (constants[index],) = struct.unpack(">H", data[position + 1:position + 3])
            position += 3
    flags, this, parent, *counts = struct.unpack(">HHHHHHH", data[position:position + 14])
    assert flags == 0x0601  # public interface (abstract)
    assert constants[constants[this]] == MISSING_HIVE_INTERFACE
    assert constants[constants[parent]] == "java/lang/Object"
    assert counts == [0, 0, 0, 0] and len(data) == position + 14


def test_spark_builds_in_steps_around_the_python_models_in_dependency_order():
    """dbt-spark cannot run Python models: dbt builds what needs none, the
    classifier runs, dbt builds what it unblocked, the statistics run, dbt
    builds the rest."""
    from convo_warehouse.spark import pipeline

    pipeline.TARGET_PATH = os.environ.get("DBT_TARGET_PATH", "target")
    steps = pipeline.python_model_steps()
    kinds = [kind for kind, _ in steps]
    assert kinds == ["dbt", "python", "dbt", "python", "dbt"]
    assert steps[1][1] == ["classifier_runs"]
    assert "classifier_runs+" in steps[0][1] and steps[2][1][:2] == ["--select", "classifier_runs+"]
    assert "path_divergence_scored" in steps[3][1] and "int_ab_test_results_scored" in steps[3][1]


def test_loader_on_spark_loads_the_landing_folder_into_spark(tmp_path, monkeypatch):
    venv = fake_spark_venv(tmp_path, answer="loaded 2 file(s), 40 row(s) into Spark")
    monkeypatch.setenv("CONVO_TARGET", "spark")
    monkeypatch.setenv("CONVO_SPARK_VENV", str(venv))

    result = dg.materialize([load_landing_files], resources=spark_resources(tmp_path))

    assert calls(venv) == [f"-m convo_warehouse.spark load --landing {tmp_path / 'landing'}"]
    assert not (tmp_path / "w.duckdb").exists()
    events = {event.materialization.asset_key: event for event in result.get_asset_materialization_events()}
    assert events[RAW_EVENTS].materialization.metadata["summary"].value == "loaded 2 file(s), 40 row(s) into Spark"


def test_a_failed_spark_step_says_which_command_and_why(tmp_path, monkeypatch):
    venv = fake_spark_venv(tmp_path, exit_code=3)
    monkeypatch.setenv("CONVO_SPARK_VENV", str(venv))

    with pytest.raises(SparkStepError, match=r"(?s)classify.*exit 3.*metastore is locked"):
        run_spark_step(["classify", "--json"])


def test_unknown_target_is_refused(monkeypatch):
    from convo_warehouse.spark.target import active_target

    monkeypatch.setenv("CONVO_TARGET", "postgres")
    with pytest.raises(ValueError, match="postgres"):
        active_target()


class _RecordingSparkTable:
    """A Spark DataFrame stand-in over pandas that records the columns selected."""

    def __init__(self, frame, selected: list) -> None:
        self._frame, self._selected = frame, selected

    def select(self, *columns: str) -> "_RecordingSparkTable":
        self._selected.append(columns)
        return _RecordingSparkTable(self._frame[list(columns)], self._selected)

    def toPandas(self):  # noqa: N802 (Spark's name)
        return self._frame.copy()


def test_python_models_on_spark_fetch_only_the_columns_they_select():
    """A Python model's ``dbt.ref(...).select(...).df()`` works as on DuckDB, and Spark
    is asked for those columns only (path_divergence_scored reads the steps, most of
    the history's rows, this way)."""
    import pandas as pd

    from convo_warehouse.spark.pipeline import _DbtShim

    steps = pd.DataFrame({"conversation_id": ["c1", "c2"], "step": ["a", "b"], "step_started_at": [1, 2]})
    selected: list = []

    class FakeSpark:
        def table(self, name: str) -> _RecordingSparkTable:
            assert name == "intermediate.int_conversation_steps_cleaned"
            return _RecordingSparkTable(steps, selected)

    dbt = _DbtShim(FakeSpark(), {"int_conversation_steps_cleaned": "intermediate.int_conversation_steps_cleaned"})
    narrowed = dbt.ref("int_conversation_steps_cleaned").select("conversation_id", "step").df()
    pd.testing.assert_frame_equal(narrowed, steps[["conversation_id", "step"]])
    assert selected == [("conversation_id", "step")]
    pd.testing.assert_frame_equal(dbt.ref("int_conversation_steps_cleaned").df(), steps)
    assert selected == [("conversation_id", "step")]


def test_the_spark_loader_has_a_reader_for_each_format_of_the_duckdb_loader_sharing_the_python_ones():
    """One reader interface: the Spark loader's readers are keyed by the DuckDB
    loader's formats, and CSV and OTLP are the very same Python readers (their
    quarantine rules live once). JSONL's verdicts are compared on Spark by
    ``make test-spark`` (tests/fixtures/landing/edge_lines.jsonl)."""
    from convo_warehouse.lib.landing.load import READERS as DUCKDB_READERS
    from convo_warehouse.spark.landing import READERS as SPARK_READERS
    from convo_warehouse.spark.landing import PythonRowsReader

    assert set(SPARK_READERS) == set(DUCKDB_READERS)
    python_formats = {fmt for fmt, reader in DUCKDB_READERS.items() if hasattr(reader, "rows")}
    assert python_formats == {"csv", "otlp.jsonl", "otlp.jsonl.gz"}
    for fmt in python_formats:
        assert isinstance(SPARK_READERS[fmt], PythonRowsReader)
        assert SPARK_READERS[fmt].reader is DUCKDB_READERS[fmt]


def test_the_last_step_on_spark_records_the_run_after_every_other_step(tmp_path, monkeypatch, manifest):
    """dbt runs in several steps on Spark, so no dbt hook sees the whole run: the ledgers are
    written by a step after every other one (the asset nothing else depends on), through
    ``python -m convo_warehouse.spark record-run --since <the run's start>``."""
    venv = fake_spark_venv(tmp_path, answer="run recorded")
    env = {**os.environ, "CONVO_TARGET": "spark", "CONVO_SPARK_VENV": str(venv)}
    script = """
import json
from convo_warehouse.definitions import defs
graph = defs.resolve_asset_graph()
record = graph.get(__import__("dagster").AssetKey(["audit", "spark_run_recorded"]))
others = graph.get_all_asset_keys() - {record.key}
# every other materializable asset is upstream of it
ancestors, stack = set(), [record.key]
while stack:
    for parent in graph.get(stack.pop()).parent_keys:
        if parent not in ancestors:
            ancestors.add(parent)
            stack.append(parent)
missing = sorted(key.to_user_string() for key in others if graph.get(key).is_materializable and key not in ancestors)
print(json.dumps(missing))
"""
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
                               text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []

    from convo_warehouse.assets.spark_models import SPARK_RUN_RECORD

    monkeypatch.setenv("CONVO_SPARK_VENV", str(venv))
    monkeypatch.setenv("CONVO_SPARK_DIR", str(tmp_path / "spark"))
    result = dg.materialize([SPARK_RUN_RECORD], resources=spark_resources(tmp_path))
    assert result.success
    # with when the run started: the models a step built whole since then already recorded it
    [call] = calls(venv)
    assert re.fullmatch(r"-m convo_warehouse\.spark record-run --since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", call), call
    # and keeps the project's state, so the next run leaves out what no load reaches
    from convo_warehouse.lib import dbt_state

    left_out = dbt_state.left_out_if_unchanged(tmp_path / "spark" / "dbt-state", REPO_ROOT, manifest)
    assert "stg_events" in left_out and "event_types" in left_out and "fct_conversations" not in left_out
    assert dbt_state.as_selection(left_out, manifest) == list(dbt_state.NO_LOAD_REACHES)
    assert dbt_state.left_out_if_unchanged(tmp_path / "nothing-kept", REPO_ROOT, manifest) == []


def test_python_models_that_need_no_other_run_as_one_step(manifest):
    """The statistics models need the classifier (through dbt models) but not each other:
    two groups, so two Spark steps instead of five."""
    from convo_warehouse.assets.spark_models import SPARK_PYTHON_MODELS, python_model_groups

    groups = [[manifest["nodes"][unique_id]["name"] for unique_id in group]
              for group in python_model_groups(manifest["nodes"])]
    assert groups[0] == ["classifier_runs"]
    assert sorted(groups[1]) == ["int_ab_test_health_scored", "int_ab_test_metrics_scored",
                                 "int_ab_test_results_scored", "path_divergence_scored"]
    assert len(SPARK_PYTHON_MODELS) == 2


def test_classifier_tables_keep_their_column_types_between_spark_and_duckdb():
    """The classifier step copies its tables from Spark into DuckDB and back: each type,
    lists included, maps to the other engine's and back to itself (an empty column would
    otherwise be typed by pandas)."""
    import duckdb

    from convo_warehouse.spark.pipeline import _duckdb_type, _spark_schema

    spark_types = ["string", "boolean", "double", "float", "int", "bigint", "timestamp", "date", "array<float>"]
    con = duckdb.connect()
    con.execute("create table copied (" + ", ".join(
        f"c{number} {_duckdb_type(kind)}" for number, kind in enumerate(spark_types)) + ")")
    assert _spark_schema(con, "copied") == ", ".join(f"c{number} {kind}" for number, kind in enumerate(spark_types))
    assert _duckdb_type("timestamp_ntz") == "timestamp"
