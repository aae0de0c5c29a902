"""The dbt project Dagster builds assets from: the repository root, or
``CONVO_DBT_PROJECT_DIR`` (a copy of the project, e.g. with your own seeds).

The manifest (``<target>/manifest.json``) must exist before the definitions
load. Under ``dagster dev`` ``prepare_if_dev()`` runs ``dbt parse`` for us;
everywhere else (``make run``, tests, a deployed code server) call
``ensure_manifest()`` first, or run ``dbt parse`` yourself.

The target folder honours ``DBT_TARGET_PATH`` (so parallel checkouts and tests
can keep their own), else ``<repo>/target``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from convo_warehouse.lib.dbt_process import without_dbt_core
from convo_warehouse.lib.project_files import REPO_ROOT, parse_fingerprint, target_dir

with without_dbt_core():
    from dagster_dbt import DbtProject

# The dbt project (dbt_project.yml, profiles.yml, models, seeds, ...).
PROJECT_DIR = Path(os.environ.get("CONVO_DBT_PROJECT_DIR") or REPO_ROOT).resolve()


def target_path() -> Path:
    """Where dbt writes its artifacts: ``DBT_TARGET_PATH`` or ``<project>/target``."""
    return target_dir(PROJECT_DIR, os.environ)


def manifest_path() -> Path:
    return target_path() / "manifest.json"


#: dbt invocation folders (``<target>/<op>-<run>-<id>/``: dagster-dbt gives
#: each ``dbt build`` its own, with its logs and artifacts) kept per op.
KEEP_INVOCATIONS = 5


def invocation_target_path(op_name: str, run_id: str) -> Path:
    """A new folder for one dbt invocation of ``op_name`` in run ``run_id`` (dagster-dbt's naming)."""
    import uuid

    return target_path() / f"{op_name}-{run_id[:7]}-{uuid.uuid4().hex[:7]}"


def prune_invocation_targets(op_name: str, keep: int = KEEP_INVOCATIONS) -> list[Path]:
    """Delete all but the ``keep`` newest invocation folders of ``op_name``; return those deleted.

    Without this, an hourly schedule would fill the target folder with old
    dbt logs and manifests, a new folder every run. The newest ones stay for debugging
    (the ``dbt.log`` and compiled SQL of the last runs).
    """
    import shutil

    folders = sorted(
        (path for path in target_path().glob(f"{op_name}-*-*") if path.is_dir()),
        key=lambda path: path.stat().st_mtime_ns,
        reverse=True,
    )
    for folder in folders[keep:]:
        shutil.rmtree(folder, ignore_errors=True)
    return folders[keep:]


def dbt_executable() -> str:
    """The dbt the pipeline runs: ``convo-dbt`` next to this Python (dbt's command line with
    less garbage collection: ``lib/dbt_process.py``), else that venv's ``dbt``, else ``dbt`` on PATH."""
    for name in ("convo-dbt", "dbt"):
        candidate = Path(sys.executable).with_name(name)
        if candidate.exists():
            return str(candidate)
    return "dbt"


def ensure_manifest(force: bool = False) -> Path:
    """Run ``dbt parse`` unless the manifest is up to date (or ``force``); return its path.

    Up to date: it was written by our last parse (same modification time) from
    the same project files and profile settings (``lib/project_files.py``, ``parse_fingerprint``, kept
    next to the manifest), so dbt's next build reads it partially. A parse costs seconds
    of every run, so a run skips it when nothing it reads changed. Parsing
    writes only into the target folder; it touches no warehouse.
    """
    import fcntl

    path = manifest_path()
    stamp = path.with_name("convo_parse_fingerprint")
    fingerprint = parse_fingerprint(PROJECT_DIR, os.environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    # runs sharing a target folder (tests, a scheduled run beside `make ui`) parse it one at a time
    with open(path.with_name(".convo_parse.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and path.exists() and stamp.exists():
            if stamp.read_text() == f"{fingerprint} {path.stat().st_mtime_ns}":
                return path
        return _parse(path, stamp, fingerprint)


def _parse(path: Path, stamp: Path, fingerprint: str) -> Path:
    from convo_warehouse.lib import dbt_commands

    command = [dbt_executable(), *dbt_commands.parse()]
    env = {
        **os.environ,
        "DBT_TARGET_PATH": str(target_path()),
        "DBT_PROFILES_DIR": os.environ.get("DBT_PROFILES_DIR", str(PROJECT_DIR)),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    result = subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(
            f"`dbt parse` failed, so the Dagster definitions cannot load "
            f"(no {path}):\n{result.stdout}\n{result.stderr}"
        )
    stamp.write_text(f"{fingerprint} {path.stat().st_mtime_ns}")
    return path


dbt_project = DbtProject(
    project_dir=PROJECT_DIR,
    profiles_dir=PROJECT_DIR,
    target_path=target_path(),
)
dbt_project.prepare_if_dev()
