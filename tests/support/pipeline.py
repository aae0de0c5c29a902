"""Pipeline runs (`convo-warehouse run`) in tests that share one dbt parse per test process.

dbt parses the whole project again, not partially, when its profile changes,
and the warehouse path is part of the profile: a run on a new test warehouse,
in a target folder of its own, paid a full `dbt parse` before its build. Here
every run of one test process names its warehouse by the same path, a
symlink pointed at the run's own folder just before the run, and uses the
same target folder, so ``project.ensure_manifest()`` finds the manifest
already parsed (same project, same file name) and dbt's build reads the
target's ``partial_parse.msgpack``. Tests in one process run one at a time,
so the link never has to name two folders at once.

The same target folder is the test process's ``dbt_target_dir``: its in-process dbt
(``support/warehouse.py``) takes its manifest from the parse the pipeline runs use, so a
test process parses the project in full once, not once for each.

``conftest.py`` calls ``share_parses_under()`` once per session (each xdist
worker has its own temporary folder, so workers never share a link).
"""

from __future__ import annotations

import os
from pathlib import Path

_folder: Path | None = None


def share_parses_under(folder: Path) -> None:
    """Keep the link and the shared target folder in ``folder`` (this process's own)."""
    global _folder
    folder.mkdir(parents=True, exist_ok=True)
    _folder = folder


def _shared() -> Path:
    if _folder is None:
        raise RuntimeError("share_parses_under() was not called (tests/conftest.py does it)")
    return _folder


def shared_target() -> Path:
    """The dbt target folder of this process's pipeline runs (and of its in-process dbt)."""
    return _shared() / "target"


def parse_env(name: str = "warehouse.duckdb") -> dict[str, str]:
    """What a parse for ``shared_target()`` is made with: the link's warehouse path (part of
    dbt's profile, so of whether a later run may parse partially) and the target folder."""
    return {"CONVO_DUCKDB_PATH": str(_shared() / "warehouse" / name), "DBT_TARGET_PATH": str(shared_target())}


def pipeline_env(root: Path, name: str = "warehouse.duckdb") -> dict[str, str]:
    """``CONVO_DUCKDB_PATH`` and ``DBT_TARGET_PATH`` for processes that work on the warehouse
    ``root / name``: the warehouse through this process's link, now pointed at ``root``."""
    folder = _shared()
    link = folder / "warehouse"
    pending = folder / f".warehouse-{os.getpid()}"
    pending.unlink(missing_ok=True)
    pending.symlink_to(root.resolve(), target_is_directory=True)
    os.replace(pending, link)
    return parse_env(name)
