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

A table whose content did not change since the previous version is not copied
again: its Parquet file is a hard link to the previous version's (a copy where
the file system refuses links). Tables are compared by a content hash.

A version folder is written completely (under a hidden ``.partial`` name)
before it is renamed into place and before the pointer moves, so a reader sees
the old snapshot or the new one, never half of one. Nothing in a version
folder changes after it is published. A reader that opened a snapshot keeps
reading it after the pointer moves (even after its folder is pruned: the
files stay readable until closed). The newest ``CONVO_SERVING_KEEP`` versions
(default 5) are kept. Publishing data identical to the current snapshot's
creates nothing.

No Dagster here: the publish asset (``assets/serving.py``) calls ``publish``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import duckdb

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
        return self.folder / self.tables[qualified(table)]["parquet"]

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


@dataclasses.dataclass(frozen=True)
class ServedTable:
    """A table of the warehouse as the snapshot serves it."""

    name: str  # schema.table
    selection: str  # "*" or the served column list (SERVED_EXTRA_TABLES)
    all_columns: tuple[tuple[str, str], ...]  # every column of the warehouse table: (name, type)
    columns: tuple[tuple[str, str], ...]  # the served ones

    @property
    def column_list(self) -> str:
        return ", ".join(ident(column) for column, _ in self.columns)


def qualified(table: str) -> str:
    """``schema.table``; a bare name means a mart (``metrics_daily`` -> ``marts.metrics_daily``)."""
    return table if "." in table else f"marts.{table}"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str | os.PathLike) -> str:
    """A quoted SQL string, for the places DuckDB takes no parameter (ATTACH)."""
    return "'" + str(text).replace("'", "''") + "'"


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
        if entry.is_dir()
        and not entry.name.startswith(".")
        and (entry / MANIFEST_FILE).exists()
    )


def served_tables(con: duckdb.DuckDBPyConnection) -> list[ServedTable]:
    """Every served table that exists in the warehouse, with its columns."""
    placeholders = ", ".join("?" for _ in SERVED_SCHEMAS)
    extra = ", ".join("?" for _ in SERVED_EXTRA_TABLES)
    rows = con.execute(
        f"""
        select tables.table_schema || '.' || tables.table_name as table_name,
            list((columns.column_name, columns.data_type) order by columns.ordinal_position) as columns,
        from information_schema.tables as tables
        inner join information_schema.columns as columns
            on columns.table_catalog = tables.table_catalog
            and columns.table_schema = tables.table_schema
            and columns.table_name = tables.table_name
        where tables.table_catalog = current_database()
            and (tables.table_schema in ({placeholders})
                 or tables.table_schema || '.' || tables.table_name in ({extra}))
        group by all
        order by table_name
        """,
        [*SERVED_SCHEMAS, *SERVED_EXTRA_TABLES],
    ).fetchall()
    tables = []
    for name, columns in rows:
        all_columns = tuple((column_name, data_type) for column_name, data_type in columns)
        selection = SERVED_EXTRA_TABLES.get(name, "*")
        wanted = None if selection == "*" else {column.strip() for column in selection.split(",")}
        served = tuple(column for column in all_columns if wanted is None or column[0] in wanted)
        tables.append(ServedTable(name, selection, all_columns, served))
    return tables


# Floating-point columns are compared to 12 significant digits: DuckDB's
# parallel sums of doubles may differ in the last bits from one rebuild of the
# same data to the next, which is not new data.
_FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
FLOAT_DIGITS = 12


def _content_sum(table: ServedTable) -> str:
    """SQL: an order-independent hash of the rows (a sum of row hashes, so partitions add up to the table)."""
    values = ", ".join(
        f"format('{{:.{FLOAT_DIGITS}g}}', {ident(column)})" if data_type in _FLOAT_TYPES else ident(column)
        for column, data_type in table.columns
    )
    return f"coalesce(sum(hash(row({values}))), 0)"


def _fingerprint(tables: Iterable[tuple[ServedTable, int, int]]) -> str:
    """SHA-256 over every served table's name, columns, types, row count and content hash."""
    digest = hashlib.sha256()
    for table, rows, content in tables:
        types = list(table.all_columns)
        digest.update(f"{table.name}|{table.selection}|{types}|{rows}|{content}\n".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Planning: which tables changed, which files to link from the previous version
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class _TablePlan:
    table: ServedTable
    rows: int
    content: int
    reuse: Path | None = None  # the previous version's Parquet file to link; None: write from the warehouse


def _content_sums(con: duckdb.DuckDBPyConnection, tables: Sequence[ServedTable]) -> dict[str, tuple[int, int]]:
    """Rows and content hash of every table, in one query."""
    selects = " union all ".join(
        f"select {literal(table.name)}, count(*), {_content_sum(table)} from {table.name}" for table in tables
    )
    return {name: (rows, int(content)) for name, rows, content in con.execute(selects).fetchall()}


def _plan(
    con: duckdb.DuckDBPyConnection, tables: Sequence[ServedTable], previous: Snapshot | None
) -> list[_TablePlan]:
    """Every table's rows and content hash, and the previous version's file when the content is the same."""
    contents = _content_sums(con, tables)
    plans = []
    for table in tables:
        rows, content = contents[table.name]
        plan = _TablePlan(table, rows, content)
        entry = previous.tables.get(table.name) if previous else None
        same = (
            entry is not None
            and entry.get("content_hash") == str(content)
            and entry.get("rows") == rows
            and entry.get("columns") == [list(column) for column in table.columns]
        )
        if same and (previous.folder / entry["parquet"]).is_file():
            plan.reuse = previous.folder / entry["parquet"]
        plans.append(plan)
    return plans


# ---------------------------------------------------------------------------
# Writing a version
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class _FileCounts:
    written: int = 0
    linked: int = 0
    copied: int = 0  # the file system refused a hard link


def _link_or_copy(source: Path, target: Path, counts: _FileCounts, fresh: list[Path]) -> None:
    """Hard-link ``source`` as ``target``; copy it where the file system refuses links (another device, no support)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        counts.linked += 1
    except FileNotFoundError:
        raise
    except OSError:
        shutil.copyfile(source, target)
        counts.copied += 1
        fresh.append(target)


def _write_parquet(
    con: duckdb.DuckDBPyConnection, plan: _TablePlan, folder: Path, counts: _FileCounts, fresh: list[Path]
) -> str:
    """The table's Parquet file, written from the warehouse or linked from the previous version."""
    name = f"{PARQUET_DIR}/{plan.table.name}.parquet"
    target = folder / name
    if plan.reuse is None:
        con.execute(
            f"copy (select {plan.table.column_list} from {plan.table.name}) to $target (format parquet, compression zstd)",
            {"target": str(target)},
        )
        counts.written += 1
        fresh.append(target)
    else:
        _link_or_copy(plan.reuse, target, counts, fresh)
    return name


def _write_database(con: duckdb.DuckDBPyConnection, folder: Path, plans: Sequence[_TablePlan]) -> None:
    """The version's DuckDB file: every served table, copied from the warehouse."""
    catalog = "served_snapshot"
    con.execute(f"attach {literal(folder / DATABASE_FILE)} as {catalog}")
    try:
        for schema in sorted({plan.table.name.split(".")[0] for plan in plans}):
            con.execute(f"create schema {catalog}.{schema}")
        for plan in plans:
            con.execute(f"create table {catalog}.{plan.table.name} as select {plan.table.column_list} from {plan.table.name}")
        con.execute(f"checkpoint {catalog}")
    finally:
        con.execute(f"detach {catalog}")


def _fsync_one(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync(paths: Iterable[Path]) -> None:
    """fsync files and folders, several at a time: a journaling file system commits concurrent ones together."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(_fsync_one, paths))


def _write_version(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    plans: Sequence[_TablePlan],
    manifest: dict,
    progress: Callable[[str], None],
) -> None:
    """Fill ``folder`` with the Parquet files, the DuckDB file and the manifest."""
    (folder / PARQUET_DIR).mkdir(parents=True)
    counts, fresh = _FileCounts(), []
    for plan in plans:
        progress(f"publishing {plan.table.name}")
        parquet = _write_parquet(con, plan, folder, counts, fresh)
        manifest["tables"][plan.table.name] = {
            "rows": plan.rows,
            "parquet": parquet,
            "columns": [list(column) for column in plan.table.columns],
            "content_hash": str(plan.content),
        }
    manifest["files"] = dataclasses.asdict(counts)
    progress(f"writing {DATABASE_FILE}")
    _write_database(con, folder, plans)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # Linked files are already on disk; the new ones and every folder's entries are not.
    _fsync([*fresh, folder / DATABASE_FILE, folder / MANIFEST_FILE])
    _fsync(sorted({path.parent for path in folder.rglob("*")} | {folder}))


# ---------------------------------------------------------------------------
# Publishing: plan, write, switch, prune
# ---------------------------------------------------------------------------


def _switch_pointer(serving_dir: Path, version: str) -> None:
    """Point ``current`` at ``versions/<version>``: a new symlink renamed over the old one (atomic)."""
    temporary = serving_dir / f".{CURRENT_LINK}.{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(Path(VERSIONS_DIR) / version)
    os.replace(temporary, serving_dir / CURRENT_LINK)
    directory = os.open(serving_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _prune(serving_dir: Path, keep: int, current: str) -> list[str]:
    """Delete all but the newest ``keep`` versions (never the current one) and leftovers of failed publishes.

    Files a kept version shares (hard links) stay: deleting a folder removes
    its names, not the data other names point to.
    """
    versions_dir = serving_dir / VERSIONS_DIR
    for leftover in versions_dir.glob(f".*{PARTIAL_SUFFIX}"):
        shutil.rmtree(leftover, ignore_errors=True)
    pruned = []
    for version in list_versions(serving_dir)[:-keep]:
        if version != current:
            shutil.rmtree(versions_dir / version)
            pruned.append(version)
    return pruned


def _newest_event_at(con: duckdb.DuckDBPyConnection, tables: Sequence[ServedTable]) -> str | None:
    if "marts.fct_conversations" not in {table.name for table in tables}:
        return None
    value = con.execute("select max(last_event_at) from marts.fct_conversations").fetchone()[0]
    return value.isoformat() if value is not None else None


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
    tables = served_tables(con)
    if not tables:
        raise RuntimeError(
            "nothing to publish: the warehouse has no marts yet. Run the whole pipeline "
            "(`convo-warehouse run`) before publishing."
        )
    try:
        previous = current_snapshot(serving_dir)
    except SnapshotNotFoundError:
        previous = None
    progress(f"comparing {len(tables)} tables with the current snapshot")
    plans = _plan(con, tables, previous)
    content = _fingerprint((plan.table, plan.rows, plan.content) for plan in plans)
    if previous is not None and previous.manifest.get("fingerprint") == content:
        return PublishResult(snapshot=previous, created=False, pruned=[])

    published_at = now()
    version = f"{published_at:%Y%m%dT%H%M%S%fZ}-{content[:8]}"
    versions_dir = serving_dir / VERSIONS_DIR
    versions_dir.mkdir(parents=True, exist_ok=True)
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
        _write_version(con, partial, plans, manifest, progress)
        os.rename(partial, versions_dir / version)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _switch_pointer(serving_dir, version)
    pruned = _prune(serving_dir, keep, version)
    return PublishResult(snapshot=current_snapshot(serving_dir), created=True, pruned=pruned)
