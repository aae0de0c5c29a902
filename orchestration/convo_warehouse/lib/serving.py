"""The published snapshot: a read-only copy of the marts that readers use instead of the warehouse.

DuckDB allows one writing process or many reading processes, never both, so
dashboards, BI tools and analysts never open the warehouse the pipeline
writes. After a successful run the publish step copies the served tables into
a new *version* folder beside the current one, then switches a pointer::

    <serving dir>/                      CONVO_SERVING_DIR, default: next to the warehouse, `serving/`
        current -> versions/<version>   symlink, replaced atomically (rename)
        versions/<version>/
            warehouse.duckdb            every served table, same schema.table names as the warehouse
            parquet/<schema>.<table>.parquet
            manifest.json               run id, published_at, newest event, row counts, test status

A version folder is written completely (under a hidden ``.partial`` name)
before it is renamed into place and before the pointer moves, so a reader sees
the old snapshot or the new one, never half of one. Nothing in a version
folder changes after it is published. The snapshot holds message text, so its
files are readable by their owner only (``CONVO_FILE_MODE``, see
``lib/file_modes.py``). A reader that opened a snapshot keeps
reading it after the pointer moves (even after its folder is pruned: the
files stay readable until closed). The newest ``CONVO_SERVING_KEEP`` versions
(default 5) are kept. Publishing data identical to the current snapshot's
creates nothing.

No Dagster here: the publish asset (``assets/serving.py``) calls ``publish``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

from convo_warehouse.lib import file_modes
from convo_warehouse.lib.warehouse import warehouse_path

SERVING_DIR_ENV = "CONVO_SERVING_DIR"
KEEP_ENV = "CONVO_SERVING_KEEP"
DEFAULT_KEEP = 5

CURRENT_LINK = "current"
VERSIONS_DIR = "versions"
DATABASE_FILE = "warehouse.duckdb"
MANIFEST_FILE = "manifest.json"
PARQUET_DIR = "parquet"
PARTIAL_SUFFIX = ".partial"

# What is served: every table and view of these schemas...
SERVED_SCHEMAS = ("marts",)
# ...plus these, for the data-health page (columns listed leave out raw input
# text, which may hold personal data).
SERVED_EXTRA_TABLES: dict[str, str] = {
    "audit.reconciliation": "*",
    "quarantine.rejected_events": "load_id, source_file, row_number, reason, reason_detail",
}


class SnapshotNotFoundError(FileNotFoundError):
    """No snapshot has been published yet."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One published version: its folder and its manifest."""

    folder: Path
    manifest: dict

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def database(self) -> Path:
        return self.folder / DATABASE_FILE

    def parquet(self, table: str) -> Path:
        """The Parquet file of ``schema.table`` (or a bare mart name)."""
        return self.folder / PARQUET_DIR / f"{qualified(table)}.parquet"

    @property
    def tables(self) -> dict[str, dict]:
        return self.manifest["tables"]

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to this version's DuckDB file, in UTC."""
        con = duckdb.connect(str(self.database), read_only=True)
        con.execute("set TimeZone = 'UTC'")
        return con


@dataclasses.dataclass(frozen=True)
class PublishResult:
    snapshot: Snapshot
    created: bool  # false: the data equals the current snapshot's, nothing was written
    pruned: list[str]


def qualified(table: str) -> str:
    """``schema.table``; a bare name means a mart (``metrics_daily`` -> ``marts.metrics_daily``)."""
    return table if "." in table else f"marts.{table}"


def serving_path(explicit: str | os.PathLike | None = None, warehouse: Path | None = None) -> Path:
    """The serving folder: the argument, else ``CONVO_SERVING_DIR``, else ``serving/`` beside the warehouse."""
    value = explicit or os.environ.get(SERVING_DIR_ENV)
    if value:
        path = Path(value)
        return path if path.is_absolute() else Path.cwd() / path
    return (warehouse or warehouse_path()).parent / "serving"


def keep_versions() -> int:
    """How many versions to keep: ``CONVO_SERVING_KEEP`` (at least 1), default 5."""
    value = os.environ.get(KEEP_ENV)
    if not value:
        return DEFAULT_KEEP
    try:
        keep = int(value)
    except ValueError:
        raise ValueError(f"{KEEP_ENV}={value!r} is not a whole number (how many snapshots to keep, e.g. 5)") from None
    if keep < 1:
        raise ValueError(f"{KEEP_ENV}={value!r}: keep at least 1 snapshot")
    return keep


def current_snapshot(serving_dir: Path) -> Snapshot:
    """The snapshot the pointer names now, resolved once (so its files and manifest agree)."""
    link = serving_dir / CURRENT_LINK
    if not link.exists():
        raise SnapshotNotFoundError(
            f"no published snapshot in {serving_dir}: run `convo-warehouse run` (or `make run`), "
            "which publishes after every successful run (or set CONVO_SERVING_DIR)."
        )
    folder = link.resolve()
    return Snapshot(folder=folder, manifest=json.loads((folder / MANIFEST_FILE).read_text()))


def list_versions(serving_dir: Path) -> list[str]:
    """Published versions, oldest first (version names sort by publish time)."""
    versions = serving_dir / VERSIONS_DIR
    if not versions.is_dir():
        return []
    return sorted(
        entry.name
        for entry in versions.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and (entry / MANIFEST_FILE).exists()
    )


def served_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """``(schema.table, column list)`` for every served table that exists in the warehouse."""
    placeholders = ", ".join("?" for _ in SERVED_SCHEMAS)
    rows = con.execute(
        f"""
        select table_schema, table_name
        from information_schema.tables
        where table_catalog = current_database()
            and (table_schema in ({placeholders})
                 or table_schema || '.' || table_name in ({", ".join("?" for _ in SERVED_EXTRA_TABLES)}))
        order by table_schema, table_name
        """,
        [*SERVED_SCHEMAS, *SERVED_EXTRA_TABLES],
    ).fetchall()
    return [(f"{schema}.{name}", SERVED_EXTRA_TABLES.get(f"{schema}.{name}", "*")) for schema, name in rows]


# Floating-point columns are compared to 12 significant digits: DuckDB's
# parallel sums of doubles may differ in the last bits from one rebuild of the
# same data to the next, which is not new data.
_FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
FLOAT_DIGITS = 12


def fingerprint(con: duckdb.DuckDBPyConnection, tables: Sequence[tuple[str, str]]) -> str:
    """Order-independent hash of the served tables: names, column types and every row."""
    digest = hashlib.sha256()
    for table, columns in tables:
        schema, name = table.split(".")
        types = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [schema, name],
        ).fetchall()
        wanted = None if columns == "*" else {column.strip() for column in columns.split(",")}
        values = ", ".join(
            f"format('{{:.{FLOAT_DIGITS}g}}', \"{column}\")" if data_type in _FLOAT_TYPES else f'"{column}"'
            for column, data_type in types
            if wanted is None or column in wanted
        )
        rows, content = con.execute(
            f"select count(*), coalesce(sum(hash(row({values}))), 0) from {table}"
        ).fetchone()
        digest.update(f"{table}|{columns}|{types}|{rows}|{content}\n".encode())
    return digest.hexdigest()


def _newest_event_at(con: duckdb.DuckDBPyConnection, tables: Sequence[tuple[str, str]]) -> str | None:
    if ("marts.fct_conversations", "*") not in tables:
        return None
    value = con.execute("select max(last_event_at) from marts.fct_conversations").fetchone()[0]
    return value.isoformat() if value is not None else None


def _write_version(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    tables: Sequence[tuple[str, str]],
    manifest: dict,
    progress: Callable[[str], None],
) -> None:
    """Fill ``folder`` with the DuckDB file, one Parquet per table and the manifest."""
    # The folder is private from its creation (CONVO_FILE_MODE), so nobody else reads a file
    # DuckDB creates with the umask's mode before restrict() below tightens it.
    file_modes.make_dirs(folder / PARQUET_DIR)
    con.execute(f"attach {_sql_string(folder / DATABASE_FILE)} as served_snapshot")
    try:
        for schema in sorted({table.split(".")[0] for table, _ in tables}):
            con.execute(f"create schema served_snapshot.{schema}")
        for table, columns in tables:
            progress(f"publishing {table}")
            con.execute(f"create table served_snapshot.{table} as select {columns} from {table}")
            rows = con.execute(f"select count(*) from served_snapshot.{table}").fetchone()[0]
            parquet = folder / PARQUET_DIR / f"{table}.parquet"
            con.execute(
                f"copy (select * from served_snapshot.{table}) to {_sql_string(parquet)} (format parquet, compression zstd)"
            )
            manifest["tables"][table] = {"rows": rows, "parquet": f"{PARQUET_DIR}/{parquet.name}"}
        con.execute("checkpoint served_snapshot")
    finally:
        con.execute("detach served_snapshot")
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    file_modes.restrict(folder)
    for path in [*folder.rglob("*"), folder]:
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _switch_pointer(serving_dir: Path, version: str) -> None:
    """Point ``current`` at ``versions/<version>``: a new symlink renamed over the old one (atomic)."""
    temporary = serving_dir / f".{CURRENT_LINK}.{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(Path(VERSIONS_DIR) / version)
    os.replace(temporary, serving_dir / CURRENT_LINK)
    _fsync_directory(serving_dir)


def _fsync_directory(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (the entry lives in the folder, not the file)."""
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _sql_string(path: Path) -> str:
    """``path`` as a SQL string literal: a quote in a folder name ("bob's data") is doubled."""
    return "'" + str(path).replace("'", "''") + "'"


def _prune(serving_dir: Path, keep: int, current: str) -> list[str]:
    """Delete all but the newest ``keep`` versions (never the current one) and leftovers of failed publishes."""
    versions_dir = serving_dir / VERSIONS_DIR
    for leftover in versions_dir.glob(f".*{PARTIAL_SUFFIX}"):
        shutil.rmtree(leftover, ignore_errors=True)
    pruned = []
    for version in list_versions(serving_dir)[:-keep]:
        if version != current:
            shutil.rmtree(versions_dir / version)
            pruned.append(version)
    return pruned


def publish(
    con: duckdb.DuckDBPyConnection,
    serving_dir: Path,
    *,
    run_id: str,
    tests: dict,
    keep: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> PublishResult:
    """Publish the served tables of the warehouse ``con`` as a new snapshot version.

    ``tests`` is the run's test status, copied into the manifest. When the
    data equals the current snapshot's, nothing is written and the current
    snapshot is returned (``created`` false). The caller holds the writer lock,
    so no two publishes run at once.
    """
    keep = keep_versions() if keep is None else keep
    file_modes.file_mode()  # a bad CONVO_FILE_MODE fails before anything is written
    tables = served_tables(con)
    if not tables:
        raise RuntimeError(
            "nothing to publish: the warehouse has no marts yet. Run the whole pipeline "
            "(`convo-warehouse run`) before publishing."
        )
    content = fingerprint(con, tables)
    try:
        current = current_snapshot(serving_dir)
    except SnapshotNotFoundError:
        current = None
    if current is not None and current.manifest.get("fingerprint") == content:
        return PublishResult(snapshot=current, created=False, pruned=[])

    published_at = now()
    version = f"{published_at:%Y%m%dT%H%M%S%fZ}-{content[:8]}"
    versions_dir = serving_dir / VERSIONS_DIR
    file_modes.make_dirs(versions_dir)
    partial = versions_dir / f".{version}{PARTIAL_SUFFIX}"
    manifest = {
        "version": version,
        "run_id": run_id,
        "published_at": published_at.isoformat(),
        "newest_event_at": _newest_event_at(con, tables),
        "fingerprint": content,
        "tests": tests,
        "tables": {},
    }
    try:
        _write_version(con, partial, tables, manifest, progress)
        os.rename(partial, versions_dir / version)
        _fsync_directory(versions_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _switch_pointer(serving_dir, version)
    pruned = _prune(serving_dir, keep, version)
    return PublishResult(snapshot=current_snapshot(serving_dir), created=True, pruned=pruned)
