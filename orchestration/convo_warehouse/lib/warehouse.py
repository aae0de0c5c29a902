"""Where the warehouse lives, and the single-writer lock around it.

DuckDB allows one writing process per file. A run holds an advisory lock on
``<warehouse>.lock`` for its whole duration (loader, dbt, classifier), so a
second run fails at once with a clear "warehouse is busy" message instead of
failing half-way with a DuckDB lock error or interleaving writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from convo_warehouse.lib import file_modes

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_LANDING = "data/landing"
# DuckDB's memory cap, for dbt (profiles.yml) and every connection opened
# here (loader, classifier, checks, publish): it spills to disk rather than
# grow. DuckDB's own default is 80 % of the machine's memory.
MEMORY_LIMIT_ENV = "CONVO_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2.5GB"
# Lock files this process holds -> the pid that took them (a forked child
# inherits the dict but not the lock, so the pid is checked too).
_HELD_LOCKS: dict[Path, int] = {}


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse (a writer, or readers when we want to write)."""


@dataclasses.dataclass(frozen=True)
class LockHolder:
    """A process holding a lock on the warehouse file: DuckDB's (``read``/``write``) or our run lock."""

    pid: int
    mode: str  # "write": a DuckDB writer; "read": a read-only DuckDB reader; "run": our writer lock
    command: str

    def describe(self) -> str:
        return f"pid {self.pid}: {self.command}" if self.command else f"pid {self.pid}"


def _command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    words = [word.decode(errors="replace") for word in raw.split(b"\0") if word]
    text = " ".join(words)
    return text if len(text) <= 160 else text[:157] + "..."


def lock_holders(path: Path, *, include_self: bool = False) -> list[LockHolder]:
    """Other processes holding a lock on the warehouse file (DuckDB's) or its run lock, from /proc/locks.

    DuckDB takes a shared lock for a read-only connection and an exclusive one
    for a writer. Empty where /proc/locks is unavailable (not Linux).
    ``include_self`` counts this process's own connections too.
    """
    inodes: dict[tuple[int, int], str] = {}
    for candidate, mode in ((path, "duckdb"), (Path(f"{path}.lock"), "run")):
        try:
            stat = candidate.stat()
        except OSError:
            continue
        inodes[(os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino)] = mode
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    holders: dict[tuple[int, str], LockHolder] = {}
    for line in lines:
        # "1: POSIX  ADVISORY  READ 12345 08:01:1234567 0 EOF" ("->" marks a waiter)
        fields = line.split()
        if "->" in fields or len(fields) < 6:
            continue
        _, kind, _, access, pid_text, device = fields[:6]
        try:
            major, minor, inode = (int(part, 16) if i < 2 else int(part) for i, part in enumerate(device.split(":")))
            pid = int(pid_text)
        except ValueError:
            continue
        owner = inodes.get((major, minor, inode))
        if owner is None or (pid == os.getpid() and not include_self):
            continue
        if owner == "run":
            mode = "run"
        else:
            mode = "read" if access == "READ" else "write"
        holders.setdefault((pid, mode), LockHolder(pid=pid, mode=mode, command=_command_of(pid)))
    return sorted(holders.values(), key=lambda holder: (holder.mode, holder.pid))


def _pid_from_duckdb_error(text: str) -> int | None:
    match = re.search(r"\(PID (\d+)\)", text)
    return int(match.group(1)) if match else None


def busy_message(path: Path, wanted: str, error_text: str = "") -> str:
    """Why ``path`` is busy, who holds it and what to do; ``wanted`` is ``write`` or ``read``.

    Readers are sent to the published snapshot, which never blocks a run.
    """
    from convo_warehouse.lib.serving import CURRENT_LINK, DATABASE_FILE, serving_path

    snapshot = serving_path(warehouse=path) / CURRENT_LINK / DATABASE_FILE
    holders = lock_holders(path)
    if not holders and (pid := _pid_from_duckdb_error(error_text)):
        holders = [LockHolder(pid=pid, mode="unknown", command=_command_of(pid))]
    readers = [holder for holder in holders if holder.mode == "read"]
    writers = [holder for holder in holders if holder.mode in ("write", "run")]
    if writers:
        who = "; ".join(dict.fromkeys(holder.describe() for holder in writers))
        if wanted == "read":
            return (
                f"warehouse is busy: a writer ({who}) has {path} open, and DuckDB lets nobody read "
                f"while a process writes. Read the published snapshot instead: {snapshot} "
                "(always readable, replaced after every successful run), or wait for the run to finish."
            )
        return (
            f"warehouse is busy: another writer ({who}) is writing to {path}. Wait for it to finish "
            "and run again; only one writer is allowed at a time."
        )
    if readers:
        who = "; ".join(holder.describe() for holder in readers)
        return (
            f"warehouse is busy: {len(readers)} reader(s) hold {path} open read-only ({who}), and DuckDB "
            "lets nobody write while any reader has the file open. Close them, and point dashboards, "
            f"BI tools and notebooks at the published snapshot {snapshot}, which never blocks a run."
        )
    who = f" ({holders[0].describe()})" if holders else ""
    return (
        f"warehouse is busy: another process{who} holds {path}. If it is a reader (a dashboard, a BI "
        f"tool, a notebook), point it at the published snapshot {snapshot}; if it is a run, wait for it."
    )


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
            command = _command_of(int(holder)) if holder.isdigit() else ""
            raise WarehouseBusyError(
                f"warehouse is busy: another run (pid {holder}{': ' + command if command else ''}) "
                f"is writing to {path}. "
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


# A new warehouse file is written in the storage format of the DuckDB we pin
# (its dictionary + FSST string compression makes the file smaller than the
# default, which stays readable by DuckDB 0.10). Only the warehouse: readers
# open the published snapshot, which keeps DuckDB's default.
STORAGE_VERSION = "v1.5.0"


# Warehouses this process keeps open while a run's steps after dbt use them (``kept_open``):
# path -> (the connection that keeps it open, or None until ``keep_open`` opens it).
_KEPT: dict[Path, duckdb.DuckDBPyConnection | None] = {}


@contextlib.contextmanager
def kept_open(path: Path) -> Iterator[None]:
    """Inside, ``keep_open(path)`` keeps the warehouse open until the end (closed then).

    Each step of a run connects, works and closes. Opening the file reads its
    catalog, and the last connection to close writes a checkpoint, so steps
    that follow one another (the checks and the publish after dbt) paid both,
    over and over, more as the file grows. While one connection stays open,
    each ``connect`` is another connection to the same database (DuckDB shares
    one instance per file within a process): the catalog is read once, and
    the checkpoint comes once, at the end. Only while no other process needs
    the file: dbt runs in a process of its own, so a run keeps it open from
    the end of its dbt build (``keep_open``) to its own end.
    """
    path = path.resolve()
    _KEPT[path] = None
    try:
        yield
    finally:
        kept = _KEPT.pop(path, None)
        if kept is not None:
            kept.close()


def keep_open(path: Path, keep: bool = True) -> None:
    """Keep the warehouse open until the enclosing ``kept_open`` ends (nothing outside one), or,
    with ``keep`` false, close it now: before another process (dbt) opens the file."""
    path = path.resolve()
    if path not in _KEPT:
        return
    kept = _KEPT[path]
    if keep and kept is None:
        _KEPT[path] = connect(path)
    elif not keep and kept is not None:
        _KEPT[path] = None
        kept.close()


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse in UTC, capped at ``CONVO_DUCKDB_MEMORY_LIMIT``, turning DuckDB's lock
    error into ``WarehouseBusyError``. A new file is created in ``STORAGE_VERSION``'s format.
    While this process keeps it open (``kept_open``), a read-only connection is a read-write one:
    DuckDB shares a file's database within a process only in the mode it was opened in."""
    if read_only and _KEPT.get(path.resolve()) is not None:
        read_only = False
    if not read_only:
        file_modes.make_dirs(path.parent)  # created owner-only (CONVO_FILE_MODE)
    elif not path.exists():
        raise FileNotFoundError(
            f"no warehouse at {path}: run `convo-warehouse run` first (or set CONVO_DUCKDB_PATH)."
        )
    try:
        config = {} if read_only else {"storage_compatibility_version": STORAGE_VERSION}
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseBusyError(
                busy_message(path, "read" if read_only else "write", str(error))
            ) from error
        raise
    if not read_only:
        # every message is in here: owner-only, as the snapshot and the landing files are
        file_modes.protect_database(path, folder_is_ours=path.parent == (Path.cwd() / DEFAULT_WAREHOUSE).parent)
    con.execute("set TimeZone = 'UTC'")
    con.execute("set memory_limit = ?", [configured_memory_limit()])
    return con


# DuckDB's memory units, as it reads them (``current_setting('memory_limit')``
# reports the binary ones).
_DECIMAL_UNITS = (
    ("k", "kb", "kilobyte", "kilobytes"),
    ("m", "mb", "megabyte", "megabytes"),
    ("g", "gb", "gigabyte", "gigabytes"),
    ("t", "tb", "terabyte", "terabytes"),
)
_BINARY_UNITS = ("kib", "mib", "gib", "tib", "pib")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "byte": 1,
    "bytes": 1,
    **{unit: 1000**power for power, names in enumerate(_DECIMAL_UNITS, start=1) for unit in names},
    **{unit: 1024**power for power, unit in enumerate(_BINARY_UNITS, start=1)},
}


def size_bytes(text: str) -> int:
    """Bytes of a DuckDB memory size such as ``3GB``, ``1500MB`` or ``2.7 GiB`` (as DuckDB reports it)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"not a memory size: {text!r} (write it as DuckDB does, e.g. 3GB or 1500MB)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str | os.PathLike) -> str:
    """``text`` as a quoted SQL string, for the places DuckDB takes no parameter (ATTACH, COPY's
    target, a view's body, SQL built once and run many times)."""
    return "'" + str(text).replace("'", "''") + "'"


def configured_memory_limit() -> str:
    """DuckDB's memory cap for the warehouse's connections: ``CONVO_DUCKDB_MEMORY_LIMIT`` or 2.5GB."""
    return os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT


@contextlib.contextmanager
def memory_capped(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """Lower a ``connect()`` connection's memory cap to ``limit`` for the block (never raise it:
    compared with the cap as DuckDB reports it), then set the configured cap again."""
    (current,) = con.execute("select current_setting('memory_limit')").fetchone()
    if size_bytes(current) <= size_bytes(limit):
        yield
        return
    con.execute("set memory_limit = ?", [limit])
    try:
        yield
    finally:
        con.execute("set memory_limit = ?", [configured_memory_limit()])


def table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    """Whether ``schema.table`` (a table or view) exists in the connection's database."""
    schema, table = qualified_name.split(".")
    (count,) = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return count > 0
