"""Which engine the Dagster code location runs against, and how it reaches Spark.

``CONVO_TARGET`` = ``duckdb`` (default) or ``spark``. Dagster lives in the main
virtualenv, which has no PySpark; on Spark its steps run in the Spark
virtualenv (``make spark-venv``, or ``CONVO_SPARK_VENV``): dbt as that
virtualenv's ``dbt`` on the ``spark`` target, and the loader, the stage
classifier and the Python models as ``python -m convo_warehouse.spark <step>``
(the same functions ``python -m convo_warehouse.spark run`` calls). Importing
this module needs neither PySpark nor Dagster.
"""

from __future__ import annotations

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

    Raises ``SparkStepError`` with the command and the end of its error output
    when it fails.
    """
    command = [_spark_venv_file("python"), "-m", "convo_warehouse.spark", *args]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-20:])
        raise SparkStepError(f"`{' '.join(command)}` failed (exit {completed.returncode}):\n{tail}")
    return completed.stdout.strip()
