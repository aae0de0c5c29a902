"""Where the warehouse lives, and the single-writer lock around it.

DuckDB allows one writing process per file. A run holds an advisory lock on
``<warehouse>.lock`` for its whole duration (loader, dbt, classifier), so a
second run fails at once with a clear "warehouse is busy" message instead of
failing half-way with a DuckDB lock error or interleaving writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_LANDING = "data/landing"


# Lock files this process holds -> the pid that took them (a forked child
# inherits the dict but not the lock, so the pid is checked too).
_HELD_LOCKS: dict[Path, int] = {}


class WarehouseBusyError(RuntimeError):
    """Another process is writing to the warehouse."""


def warehouse_path(explicit: str | os.PathLike | None = None) -> Path:
    """The DuckDB file: the argument, else ``CONVO_DUCKDB_PATH``, else the default."""
    value = explicit or os.environ.get("CONVO_DUCKDB_PATH") or DEFAULT_WAREHOUSE
    path = Path(value)
    return path if path.is_absolute() else (Path.cwd() / path)


def landing_path(explicit: str | os.PathLike | None = None) -> Path:
    """The landing folder: the argument, else ``CONVO_LANDING_DIR``, else the default."""
    value = explicit or os.environ.get("CONVO_LANDING_DIR") or DEFAULT_LANDING
    path = Path(value)
    return path if path.is_absolute() else (Path.cwd() / path)


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold the warehouse's writer lock, or raise ``WarehouseBusyError`` at once.

    The lock is re-entrant within one process (not inherited by child
    processes), so the pipeline's steps, run in-process by Dagster inside
    ``convo-warehouse run``, can take it too.
    """
    lock_file = Path(f"{path}.lock").resolve()
    if _HELD_LOCKS.get(lock_file) == os.getpid():
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_file, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise WarehouseBusyError(
                f"warehouse is busy: another run (pid {holder}) is writing to {path}. "
                "Wait for it to finish and run again; only one writer is allowed at a time."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        _HELD_LOCKS[lock_file] = os.getpid()
        try:
            yield
        finally:
            _HELD_LOCKS.pop(lock_file, None)
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse in UTC, turning DuckDB's lock error into ``WarehouseBusyError``."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(
            f"no warehouse at {path}: run `convo-warehouse run` first (or set CONVO_DUCKDB_PATH)."
        )
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseBusyError(
                f"warehouse is busy: another process has {path} open for writing. "
                "Wait for it to finish and try again."
            ) from error
        raise
    con.execute("set TimeZone = 'UTC'")
    return con
