"""Which engine the Dagster code location runs against, and how it reaches Spark.

``CONVO_TARGET`` = ``duckdb`` (default) or ``spark``. Dagster lives in the main
virtualenv, which has no PySpark; on Spark its steps run in the Spark
virtualenv (``make spark-venv``, or ``CONVO_SPARK_VENV``): dbt as that
virtualenv's ``dbt`` on the ``spark`` target, and the loader, the stage
classifier and the Python models as ``python -m convo_warehouse.spark <step>``
(the same functions ``python -m convo_warehouse.spark run`` calls). Importing
this module needs neither PySpark nor Dagster.

``CONVO_SPARK_THRIFT=local``: this process starts one Spark server on
127.0.0.1 for the whole job, over the session's warehouse and metastore
(``convo_warehouse/spark/thrift.py``). It serves Thrift (``CONVO_SPARK_THRIFT_PORT``),
which the dbt steps and the run's record go through (``spark_thrift`` output,
``method: thrift``), and Spark Connect (``CONVO_SPARK_CONNECT_PORT``, default a
free port), which the loader, the classifier and the Python models reach as
clients (``CONVO_SPARK_CONNECT`` in their environment): one JVM and one
metastore for every step. It stops when the process exits.

``CONVO_SPARK_THRIFT=running``: the same, through a Spark server that already
runs and outlives the job (a cluster's, or ``python -m convo_warehouse.spark
serve``): dbt at ``CONVO_SPARK_THRIFT_HOST``:``CONVO_SPARK_THRIFT_PORT``, the
Python steps through ``CONVO_SPARK_CONNECT`` when it is set (else each starts a
session of its own, which needs a metastore shared with the server).
"""

from __future__ import annotations

import atexit
import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
TARGETS = ("duckdb", "spark")


class SparkStepError(RuntimeError):
    """A Spark step run from Dagster failed; the message has its command and error output."""


def active_target() -> str:
    """``duckdb`` or ``spark``, from ``CONVO_TARGET`` (read on every call, not at import)."""
    value = (os.environ.get("CONVO_TARGET") or "duckdb").strip().lower()
    if value not in TARGETS:
        raise ValueError(f"CONVO_TARGET={value!r} is not a target: use one of {', '.join(TARGETS)}")
    return value


def on_spark() -> bool:
    return active_target() == "spark"


def thrift_mode() -> str:
    """How the dbt steps reach Spark (``CONVO_SPARK_THRIFT``): ``local`` (a server this process
    starts), ``running`` (a server that already runs), or ``session`` (unset: dbt in a Spark session)."""
    value = (os.environ.get("CONVO_SPARK_THRIFT") or "").strip().lower()
    if value not in ("", "local", "running"):
        raise ValueError(
            f"CONVO_SPARK_THRIFT={value!r}: use local (a Spark server this job starts), running (a Thrift "
            "server already listening at CONVO_SPARK_THRIFT_HOST:CONVO_SPARK_THRIFT_PORT), or leave it "
            "unset (dbt in a Spark session)"
        )
    return value or "session"


def local_thrift() -> bool:
    """Whether dbt goes through a Thrift server this process runs (``CONVO_SPARK_THRIFT=local``)."""
    return thrift_mode() == "local"


def through_thrift() -> bool:
    """Whether dbt goes through a Thrift server, this process's or one already running."""
    return thrift_mode() != "session"


def spark_dbt_target() -> str:
    """The profile output the dbt steps use: ``spark_thrift`` through a Thrift server, else ``spark``."""
    return "spark_thrift" if through_thrift() else "spark"


_thrift_server = None


def start_thrift_server() -> None:
    """Start the local Thrift server unless it runs (the first dbt step, or after a session step)."""
    global _thrift_server
    from convo_warehouse.spark.thrift import ThriftServer, free_port

    if _thrift_server is None:
        connect_port = int(os.environ.get("CONVO_SPARK_CONNECT_PORT") or free_port())
        _thrift_server = ThriftServer(spark_home=spark_venv_pyspark(), connect_port=connect_port)
        atexit.register(stop_thrift_server)
    if _thrift_server.process is None:
        _thrift_server.start()


def stop_thrift_server() -> None:
    """Stop the local Spark server if it runs (at the process's exit)."""
    if _thrift_server is not None:
        _thrift_server.stop()


def spark_state_dir() -> Path:
    """Where the last complete Spark run keeps the project's fingerprint and vars
    (``lib/dbt_state.py``): in the Spark folder, so it goes with the tables it describes."""
    from convo_warehouse.spark.session import spark_dir

    return spark_dir() / "dbt-state"


def spark_venv_pyspark() -> Path:
    """The pyspark package of the Spark virtualenv (its jars and bin/spark-submit)."""
    found = sorted(spark_venv().glob("lib/python*/site-packages/pyspark"))
    if not found:
        raise SparkStepError(f"no pyspark in {spark_venv()}: run `make spark-venv`")
    return found[-1]


def spark_venv() -> Path:
    """The Spark virtualenv: ``CONVO_SPARK_VENV`` or ``<repo>/.venv-spark``."""
    return Path(os.environ.get("CONVO_SPARK_VENV") or REPO_ROOT / ".venv-spark").resolve()


def _spark_venv_file(name: str) -> str:
    path = spark_venv() / "bin" / name
    if not path.exists():
        raise SparkStepError(
            f"CONVO_TARGET=spark needs the Spark virtualenv, but {path} does not exist: "
            "run `make spark-venv` (or set CONVO_SPARK_VENV to one)"
        )
    return str(path)


def spark_dbt_executable() -> str:
    """The ``dbt`` of the Spark virtualenv (dbt-spark installed next to dbt-core)."""
    return _spark_venv_file("dbt")


def run_spark_step(args: list[str]) -> str:
    """Run ``python -m convo_warehouse.spark <args>`` in the Spark virtualenv; return its output.

    With ``CONVO_SPARK_THRIFT=local`` the step is a Spark Connect client of
    the job's server (started here if it is not yet); otherwise of the server
    ``CONVO_SPARK_CONNECT`` names, and without it the step starts a Spark
    session of its own. Raises ``SparkStepError`` with the command and the
    end of its error output when it fails.
    """
    command = [_spark_venv_file("python"), "-m", "convo_warehouse.spark", *args]
    env = None
    if local_thrift():
        start_thrift_server()
        env = {**os.environ, "CONVO_SPARK_CONNECT": _thrift_server.connect_url}
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-20:])
        raise SparkStepError(f"`{' '.join(command)}` failed (exit {completed.returncode}):\n{tail}")
    return completed.stdout.strip()


def run_spark_dbt(args: list[str]) -> str:
    """Run the Spark virtualenv's ``dbt`` with ``args`` on the dbt steps' target (through a Thrift
    server when there is one); return its output, or raise ``SparkStepError``."""
    target = spark_dbt_target()
    if local_thrift():
        start_thrift_server()
    command = [_spark_venv_file("dbt"), *args, "--target", target,
               "--target-path", str(REPO_ROOT / SPARK_TARGET_PATHS[target])]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-20:])
        raise SparkStepError(f"`{' '.join(command)}` failed (exit {completed.returncode}):\n{tail}")
    return completed.stdout.strip()


# dbt's target folder per output on Spark: its manifest and partial parse state
SPARK_TARGET_PATHS = {"spark": "target-spark", "spark_thrift": "target-spark-thrift"}
