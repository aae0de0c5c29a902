"""The published snapshot: a read-only copy of the marts that readers use instead of the warehouse.

DuckDB allows one writing process or many reading processes, never both, so
dashboards, BI tools and analysts never open the warehouse the pipeline
writes. After a successful run the publish step writes a new *version* folder
beside the current one, then switches a pointer::

    <serving dir>/                      CONVO_SERVING_DIR, default: next to the warehouse, `serving/`
        current -> versions/<version>   symlink, replaced atomically (rename)
        versions/<version>/
            warehouse.duckdb            every served table, same schema.table names as the warehouse
            parquet/<schema>.<table>.parquet            a table without a day column
            parquet/<schema>.<table>/<day column>=<day> -> ../../../../partitions/<schema>.<table>/<writer>/<day column>=<day>
                                        a table with one: a link per day to the day's folder in the store
            manifest.json               run id, published_at, newest event, tables, what changed
        partitions/<schema>.<table>/<writer>/<day column>=<day>/part0.parquet
                                        the store: day partitions, each written once by version <writer>

A version costs what changed, not what is stored:

- A table's Parquet is partitioned by day when it has a day column
  (``DAY_COLUMNS``), else one file.
- A *large* table (``CONVO_SERVING_PARQUET_ROWS`` rows or more, or whose one
  Parquet file was ``WIDE_FILE_BYTES`` or more in the previous version) is served
  from Parquet: the version's DuckDB file holds a view over its own Parquet files.
  Small tables are held in the DuckDB file itself, which starts as a copy of
  the previous version's: only the small tables that changed are copied anew.
- A day partition is written once, into the store, and shared by every
  version while its content stays the same: a version's folder of the day
  links to it (a relative symlink), so a version's table folder still reads
  as a Hive dataset. A new day writes the partitions of that day and one link
  per other day. A table without a day column whose content did not change is
  a hard link to the previous version's file (a copy where the file system
  refuses links). A shared or linked file keeps its mode: after
  ``CONVO_FILE_MODE`` changed, both are copied instead.
- What changed is read from ``audit.partitions_rewritten`` (each run records
  the days it rewrote in each incremental model, ``lib/partition_history.py``)
  rather than by scanning every table; a table the history cannot answer for
  is compared by a content hash, partition by partition.

A version folder is written completely (under a hidden ``.partial`` name)
before it is renamed into place and before the pointer moves, so a reader sees
the old snapshot or the new one, never half of one. Nothing in a version
folder changes after it is published. The snapshot holds message text, so
its files are readable by their owner only (``CONVO_FILE_MODE``, see ``lib/file_modes.py``). A reader
that opened a snapshot keeps reading it after the pointer moves: pruning
keeps the newest ``CONVO_SERVING_KEEP`` versions (default 5) and never
deletes a version whose DuckDB file a process holds open (its views read that
version's Parquet files); a partition of the store goes once no version left
names it. Publishing data identical to the current snapshot's creates nothing.

No Dagster here: the publish asset (``assets/serving.py``) calls ``publish``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import duckdb

from convo_warehouse.lib import file_modes
from convo_warehouse.lib.partition_history import PartitionHistory, read_partition_history
from convo_warehouse.lib.partition_history import TABLE as PARTITION_HISTORY_TABLE
from convo_warehouse.lib.warehouse import lock_holders, warehouse_path
from convo_warehouse.lib.warehouse import quote_identifier as ident
from convo_warehouse.lib.warehouse import sql_literal as literal

SERVING_DIR_ENV = "CONVO_SERVING_DIR"
KEEP_ENV = "CONVO_SERVING_KEEP"
DEFAULT_KEEP = 5
PARQUET_ROWS_ENV = "CONVO_SERVING_PARQUET_ROWS"
DEFAULT_PARQUET_ROWS = 100_000
# ...or from this size of its one Parquet file: a table of few but long rows (paths, texts) held in
# the DuckDB file is written whole into it at each change, megabytes of text for DuckDB to compress
WIDE_FILE_BYTES = 256 * 1024

CURRENT_LINK = "current"
VERSIONS_DIR = "versions"
DATABASE_FILE = "warehouse.duckdb"
MANIFEST_FILE = "manifest.json"
PARQUET_DIR = "parquet"
PARTITIONS_DIR = "partitions"
PARTIAL_SUFFIX = ".partial"
# DuckDB's (and Hive's) folder name for the rows whose partition value is null.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

# What is served: every table and view of these schemas...
SERVED_SCHEMAS = ("marts",)
# ...plus these, for the data-health page (columns listed leave out raw input
# text, which may hold personal data).
SERVED_EXTRA_TABLES: dict[str, str] = {
    "audit.reconciliation": "*",
    "quarantine.rejected_events": "load_id, source_file, row_number, reason, reason_detail",
}
# A served table whose served columns are all another relation's, row for row, is read from it:
# rejected_events adds each rejected row's raw values (which are not served) to
# rejected_event_reasons, and joining every rejected row of the history to raw.events cost
# every publish more as the history grew. (tests/warehouse/test_events_stored_once.py checks the
# two agree.)
SERVED_FROM: dict[str, str] = {"quarantine.rejected_events": "quarantine.rejected_event_reasons"}

# the in-memory database the views are read into for a publish (_read_views_once)
READ_ONCE = "served_views"
# statements of a publish run side by side (_side_by_side): the machines this targets have two cores
PUBLISH_THREADS = 2

STORED_IN_DUCKDB = "duckdb"
STORED_IN_PARQUET = "parquet"


@dataclasses.dataclass(frozen=True)
class DayColumn:
    """What a table's Parquet is partitioned by: a day column, or the day of a timestamp column."""

    key: str  # the partition folder's name, ``<key>=<day>``
    source: str  # the table's column it comes from
    source_type: str

    @property
    def derived(self) -> bool:
        """Whether the key is computed (the day of a timestamp) rather than a column of the table."""
        return self.key != self.source

    @property
    def expression(self) -> str:
        return f"cast({ident(self.source)} as date)" if self.derived else ident(self.source)


# The first of these a table has (with this type) partitions it by day. A run
# records the days of scope_days as rewritten in every incremental mart, and
# the rows it replaces lie on those days by any of these columns (a mart
# replaced day by day is partitioned by its scope key:
# tests/serving/test_snapshot_publish.py checks it), so a new day rewrites
# only its partitions.
DAY_COLUMNS = (
    DayColumn(key="conversation_date", source="conversation_date", source_type="DATE"),
    DayColumn(key="metric_date", source="metric_date", source_type="DATE"),
    DayColumn(key="metric_hour_date", source="metric_hour", source_type="TIMESTAMP"),
    DayColumn(key="triggered_date", source="triggered_date", source_type="DATE"),
    DayColumn(key="message_date", source="message_at", source_type="TIMESTAMP"),
    DayColumn(key="reached_date", source="reached_at", source_type="TIMESTAMP"),
    DayColumn(key="first_exposed_date", source="first_exposed_at", source_type="TIMESTAMP"),
    DayColumn(key="window_date", source="window_date", source_type="DATE"),
)


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
        """The Parquet of ``schema.table`` (or a bare mart name): a file, or a folder of day partitions."""
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
    held: list[str] = dataclasses.field(default_factory=list)  # old versions kept: a process has them open


@dataclasses.dataclass(frozen=True)
class ServedTable:
    """A table of the warehouse as the snapshot serves it."""

    name: str  # schema.table
    selection: str  # "*" or the served column list (SERVED_EXTRA_TABLES)
    all_columns: tuple[tuple[str, str], ...]  # every column of the warehouse table: (name, type)
    columns: tuple[tuple[str, str], ...]  # the served ones
    day: DayColumn | None  # what partitions its Parquet by day
    is_view: bool = False  # what the publish reads (``source``) is a view: read once (_read_views_once)
    read_from: str | None = None  # what the publish reads its rows from, when not ``name`` (SERVED_FROM, _read_views_once)

    @property
    def source(self) -> str:
        return self.read_from or self.name

    @property
    def column_list(self) -> str:
        return ", ".join(ident(column) for column, _ in self.columns)


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


def _positive_setting(name: str, default: int, meaning: str, example: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number ({meaning}, e.g. {example})") from None
    if number < 1:
        raise ValueError(f"{name}={value!r}: it must be at least 1 ({meaning})")
    return number


def keep_versions() -> int:
    """How many versions to keep: ``CONVO_SERVING_KEEP`` (at least 1), default 5."""
    return _positive_setting(KEEP_ENV, DEFAULT_KEEP, "how many snapshots to keep; keep at least 1", 5)


def parquet_rows() -> int:
    """From how many rows a table is served from Parquet: ``CONVO_SERVING_PARQUET_ROWS``, default 100,000."""
    return _positive_setting(
        PARQUET_ROWS_ENV, DEFAULT_PARQUET_ROWS, "from how many rows a table is served from Parquet files", 100_000
    )


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
        and not entry.is_symlink()
        and not entry.name.startswith(".")
        and (entry / MANIFEST_FILE).exists()
    )


def _day_column(columns: Sequence[tuple[str, str]]) -> DayColumn | None:
    types = dict(columns)
    return next((day for day in DAY_COLUMNS if types.get(day.source) == day.source_type), None)


def served_tables(con: duckdb.DuckDBPyConnection) -> list[ServedTable]:
    """Every served table that exists in the warehouse, with its columns."""
    placeholders = ", ".join("?" for _ in SERVED_SCHEMAS)
    # the served tables and the relations some are read from (SERVED_FROM), in one catalog read
    named = [*SERVED_EXTRA_TABLES, *SERVED_FROM.values()]
    extra = ", ".join("?" for _ in named)
    rows = con.execute(
        f"""
        select tables.table_schema || '.' || tables.table_name as table_name,
            tables.table_type = 'VIEW' as is_view,
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
        [*SERVED_SCHEMAS, *named],
    ).fetchall()
    found = {name: is_view for name, is_view, _ in rows if name in SERVED_FROM.values()}
    rows = [row for row in rows if row[0].split(".")[0] in SERVED_SCHEMAS or row[0] in SERVED_EXTRA_TABLES]
    tables = []
    for name, is_view, columns in rows:
        all_columns = tuple((column_name, data_type) for column_name, data_type in columns)
        selection = SERVED_EXTRA_TABLES.get(name, "*")
        wanted = None if selection == "*" else {column.strip() for column in selection.split(",")}
        served = tuple(column for column in all_columns if wanted is None or column[0] in wanted)
        source = SERVED_FROM.get(name)
        # a warehouse built before the source existed: the table itself
        read_from, is_view = (source, found[source]) if source in found else (None, is_view)
        tables.append(ServedTable(name, selection, all_columns, served, _day_column(served), is_view, read_from))
    return tables


# Floating-point columns are compared to 12 significant digits: DuckDB's
# parallel sums of doubles may differ in the last bits from one rebuild of the
# same data to the next, which is not new data.
_FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
FLOAT_DIGITS = 12


def _significant(column: str) -> str:
    """SQL: the double rounded to FLOAT_DIGITS significant digits (rounding, not formatting as text,
    which cost three times as much in a full publish). Zero, infinities, NaN and magnitudes beyond
    1e±290 (where 10 to the rounding's power overflows) stay as they are."""
    value = ident(column)
    return (
        f"case when abs({value}) between 1e-290 and 1e290 "
        f"then round({value}, {FLOAT_DIGITS - 1} - cast(floor(log10(abs({value}))) as integer)) else {value} end"
    )


def _content_sum(table: ServedTable) -> str:
    """SQL: an order-independent hash of the rows (a sum of row hashes, so partitions add up to the table)."""
    values = ", ".join(
        _significant(column) if data_type in _FLOAT_TYPES else ident(column) for column, data_type in table.columns
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
# Planning: what each table's files are in the new version, and which to write
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Read:
    """What to read (count and hash) of one table: the whole table, all its partitions, or some days."""

    table: ServedTable
    day: DayColumn | None  # None: the table as one part
    days: tuple[dt.date, ...] | None = None  # None: every partition; else these days and the null partition


@dataclasses.dataclass
class _Part:
    """One Parquet file set: a day partition of a partitioned table, or a whole table."""

    rows: int
    content: int
    # What the previous version has of it, to reuse: a day partition's folder in the store (relative
    # to the serving folder), or a whole table's file to link. None: write it from the warehouse.
    reuse: str | Path | None = None
    files: list[str] = dataclasses.field(default_factory=list)  # relative to the version folder, once placed
    folder: str | None = None  # a day partition's folder in the store, once placed


@dataclasses.dataclass
class _TablePlan:
    table: ServedTable
    rows: int
    storage: str
    day: DayColumn | None  # partitioned by it, or one file
    previous_rows: int | None  # None: the previous version did not serve this table
    previous: dict | None  # the previous version's entry, when its files can be reused
    known_from: str  # how the change is learnt: the partition history, or the content (and why)
    read: _Read | None = None  # what must be read from the warehouse to settle the plan
    parts: dict[str, _Part] = dataclasses.field(default_factory=dict)  # partition value (one file: "") -> part
    removed: list[str] = dataclasses.field(default_factory=list)  # partitions gone since the previous version

    @property
    def content(self) -> int:
        return sum(part.content for part in self.parts.values())

    @property
    def parquet(self) -> str:
        name = self.table.name if self.day else f"{self.table.name}.parquet"
        return f"{PARQUET_DIR}/{name}"

    def change(self) -> str:
        """added, reused (every file linked), rewritten (every file written) or updated (some of each)."""
        if self.previous_rows is None:
            return "added"
        reused = sum(part.reuse is not None for part in self.parts.values())
        if reused == len(self.parts) and not self.removed:
            return "reused"
        return "rewritten" if reused == 0 else "updated"


def _row_counts(con: duckdb.DuckDBPyConnection, tables: Sequence[ServedTable]) -> dict[str, int]:
    """Every table's row count, in one query."""
    counts = " union all ".join(f"select {literal(table.name)}, count(*) from {table.source}" for table in tables)
    return dict(con.execute(counts).fetchall())


def _days_filter(day: DayColumn, days: Iterable[dt.date], with_null: bool) -> str:
    """SQL: a where clause keeping the rows of these days (and those without a day).

    The days are literals (written from ``datetime.date`` values), not a list
    parameter, so DuckDB pushes them into the scan: one range from the first
    day to the last, which row groups' minimum and maximum rule out (for a
    timestamp, a range of the timestamp: its cast to a date has no minimum
    and maximum to compare), then the days' list, one lookup per row. A
    range per day instead would cost every row one comparison per day, and
    a run's late events can name a hundred days.
    """
    conditions = []
    days = sorted(days)
    if days:
        column = ident(day.source)
        first, last = days[0], days[-1] + dt.timedelta(days=1)
        within = (
            f"{column} >= timestamp '{first.isoformat()}' and {column} < timestamp '{last.isoformat()}'"
            if day.derived
            else f"{column} >= date '{first.isoformat()}' and {column} < date '{last.isoformat()}'"
        )
        listed = ", ".join(f"date '{value.isoformat()}'" for value in days)
        conditions.append(f"({within} and {day.expression} in ({listed}))")
    if with_null:
        conditions.append(f"{ident(day.source)} is null")
    return "where " + (" or ".join(conditions) or "false")


def _read_contents(
    con: duckdb.DuckDBPyConnection, reads: Sequence[_Read]
) -> dict[str, dict[str, tuple[int, int]]]:
    """Rows and content hash per part (partition value, or "" for a whole table), of every read, in one query."""
    selects = []
    for read in reads:
        key, where = "''", ""
        if read.day is not None:
            key = f"coalesce(cast({read.day.expression} as varchar), '{NULL_PARTITION}')"
            if read.days is not None:
                where = _days_filter(read.day, read.days, with_null=True)
        selects.append(
            f"select {literal(read.table.name)}, {key}, count(*), {_content_sum(read.table)} "
            f"from {read.table.source} {where} group by all"
        )
    found: dict[str, dict[str, tuple[int, int]]] = {read.table.name: {} for read in reads}
    if selects:
        for table, key, rows, content in con.execute(" union all ".join(selects)).fetchall():
            found[table][key] = (rows, int(content))
    return found


def _reusable(previous_folder: Path | None, entry: dict | None, key: str) -> str | Path | None:
    """What the previous version has of one part, to reuse, when it still exists: a day partition's
    folder in the store (holding every file the previous manifest names), or the file of a table stored
    as one. A version published before the store (no ``folder``) has nothing to share: its partitions
    are written again, once.
    """
    if previous_folder is None or entry is None:
        return None
    if not key:
        path = previous_folder / entry["parquet"]
        return path if path.is_file() else None
    partition = entry["partitions"][key]
    folder = partition.get("folder")
    if folder is None:
        return None
    # one listing per day: a folder deleted by hand would leave the new version a dangling link, and the
    # views, reading the days' files by a pattern, would silently miss that day's rows
    try:
        present = set(os.listdir(_serving_dir(previous_folder) / folder))
    except FileNotFoundError:
        return None
    return folder if all(name.rsplit("/", 1)[-1] in present for name in partition["files"]) else None


def _comparable(entry: dict | None, table: ServedTable, storage: str, day: DayColumn | None) -> dict | None:
    """The previous entry when its files can be reused: same columns, same storage, same partitioning."""
    if entry is None or "content_hash" not in entry:
        return None
    same = (
        entry.get("columns") == [list(column) for column in table.columns]
        and entry.get("storage") == storage
        and entry.get("partition_by") == (day.key if day else None)
    )
    return entry if same else None


def _wide(previous: Snapshot | None, entry: dict | None) -> bool:
    """Whether the previous version's one Parquet file of a table is ``WIDE_FILE_BYTES`` or more: a
    table of few but long rows (paths, texts) that costs the DuckDB file more than its rows say."""
    if previous is None or entry is None or entry.get("partition_by") is not None:
        return False
    with contextlib.suppress(OSError):
        return (previous.folder / entry["parquet"]).stat().st_size >= WIDE_FILE_BYTES
    return False


def _start(
    table: ServedTable, rows: int, previous: Snapshot | None, history: PartitionHistory, large: int
) -> _TablePlan:
    """How the table is stored in the new version, and what must be read of it to know what changed."""
    entry = previous.tables.get(table.name) if previous else None
    # Once served from Parquet, a table stays so while it has rows (no flip-flop around the threshold).
    from_parquet = rows > 0 and (
        rows >= large or (entry or {}).get("storage") == STORED_IN_PARQUET or _wide(previous, entry)
    )
    storage = STORED_IN_PARQUET if from_parquet else STORED_IN_DUCKDB
    day = table.day if rows > 0 else None
    comparable = _comparable(entry, table, storage, day)
    rewrites = history.rewrites_of(table.name) if comparable else None
    from_history = False
    if previous is None:
        known_from = "content: no previous version"
    elif entry is None:
        known_from = "content: not in the previous version"
    elif comparable is None:
        known_from = "content: the previous version stored it another way (layout or columns)"
    elif rewrites is None:
        known_from = f"content: {history.why_unknown(table.name)}"
    elif rewrites.rewrote_all:
        known_from = f"content: {table.name} was rewritten whole"
    elif day is None:
        # the history names days, and a table without a day column is one file: a recorded day
        # does not say which of its rows changed, and no row does not mean that nothing did.
        known_from = f"content: {PARTITION_HISTORY_TABLE} names days, and {table.name} is one file"
    else:
        known_from, from_history = history.reason, True
    plan = _TablePlan(table, rows, storage, day, (entry or {}).get("rows"), comparable, known_from)
    if day is not None:
        # From the history: only the recorded days are read, and the null partition, which no recorded day can name.
        plan.read = _Read(table, day, tuple(sorted(rewrites.days)) if from_history else None)
    else:
        plan.read = _Read(table, None)
    return plan


def _settle(plan: _TablePlan, found: dict[str, tuple[int, int]], previous_folder: Path | None) -> bool:
    """Decide every part: link it from the previous version or write it. False: read every partition first."""
    previous = plan.previous
    if plan.day is None:
        rows, content = found.get("", (0, 0))
        same = previous is not None and int(previous["content_hash"]) == content and previous["rows"] == rows
        plan.parts = {"": _Part(rows, content, _reusable(previous_folder, previous, "") if same else None)}
        return True
    old_parts = previous["partitions"] if previous else {}
    if plan.read.days is None:
        examined = set(found) | set(old_parts)
    else:
        examined = {day.isoformat() for day in plan.read.days} | {NULL_PARTITION}
        kept_rows = previous["rows"] - sum(old_parts[key]["rows"] for key in examined if key in old_parts)
        if kept_rows + sum(rows for rows, _ in found.values()) != plan.rows:
            # Rows came or went in days the history does not name: compare every partition instead.
            plan.known_from = f"content: the row count disagreed with {PARTITION_HISTORY_TABLE}"
            plan.read = _Read(plan.table, plan.day)
            return False
    plan.parts = {}
    for key, old in old_parts.items():
        if key not in examined:
            plan.parts[key] = _Part(old["rows"], int(old["content_hash"]), _reusable(previous_folder, previous, key))
    for key, (rows, content) in found.items():
        old = old_parts.get(key)
        same = old is not None and int(old["content_hash"]) == content and old["rows"] == rows
        plan.parts[key] = _Part(rows, content, _reusable(previous_folder, previous, key) if same else None)
    plan.removed = sorted(set(old_parts) - set(plan.parts))
    return True


def _plan(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[ServedTable],
    previous: Snapshot | None,
    history: PartitionHistory,
    large: int,
) -> list[_TablePlan]:
    """Every table's files in the new version, and which of them can be linked from the previous one.

    What must be read is read in one query (and, for tables whose row count
    the history does not explain, a second one).
    """
    counts = _row_counts(con, tables)
    plans = [_start(table, counts[table.name], previous, history, large) for table in tables]
    previous_folder = previous.folder if previous else None
    pending = plans
    while pending:
        found = _read_contents(con, [plan.read for plan in pending if plan.read is not None])
        pending = [plan for plan in pending if not _settle(plan, found.get(plan.table.name, {}), previous_folder)]
    return plans


# ---------------------------------------------------------------------------
# Writing a version
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class _FileCounts:
    written: int = 0
    linked: int = 0  # reused from the previous version: a shared day partition's files, a hard-linked file
    copied: int = 0  # reused as a copy: the file system refused a hard link, or the file mode changed


@dataclasses.dataclass
class _VersionFiles:
    """A version's files as its tables are written: their counts, the files written anew and the folders
    created (their modes and fsyncs are still to do)."""

    counts: _FileCounts = dataclasses.field(default_factory=_FileCounts)
    fresh: list[Path] = dataclasses.field(default_factory=list)
    folders: list[Path] = dataclasses.field(default_factory=list)

    def merge(self, other: _VersionFiles) -> None:
        for name in ("written", "linked", "copied"):
            setattr(self.counts, name, getattr(self.counts, name) + getattr(other.counts, name))
        self.fresh.extend(other.fresh)
        self.folders.extend(other.folders)


def _link_or_copy(source: Path, target: Path, share: bool) -> bool:
    """Hard-link ``source`` as ``target`` (True) when ``share``; copy it where the file system refuses links
    (another device, no support), or when not ``share`` (see ``_write_version``)."""
    if share:
        try:
            os.link(source, target)
            return True
        except FileNotFoundError:
            raise
        except OSError:
            pass
    shutil.copyfile(source, target)
    return False


def _serving_dir(version_folder: Path) -> Path:
    """The serving folder a version's folder (``<serving>/versions/<version>``, or its ``.partial``) is in."""
    return version_folder.parent.parent


def _store_folder(table: str, version: str) -> str:
    """Where ``version`` writes the day partitions of ``table`` (``schema.table``), relative to the serving folder."""
    return f"{PARTITIONS_DIR}/{table}/{version}"


def _link_partitions(plan: _TablePlan, folder: Path, version: str, files: _VersionFiles, share: bool) -> None:
    """Give the version one link per day partition of the table, to the day's folder in the store: the
    previous version's for a day that did not change (when ``share``), else the one this version writes.
    A link may name a folder not written yet: nobody reads the version before it is complete.
    """
    serving_dir = _serving_dir(folder)
    links = folder / plan.parquet
    files.folders.extend(file_modes.make_dirs(links))
    # the links are relative (the serving folder can move): from a table's folder of a version to the store
    up = os.path.relpath(serving_dir, links)
    for key, part in sorted(plan.parts.items()):
        name = f"{plan.day.key}={key}"
        shared = part.reuse is not None and share
        part.folder = str(part.reuse) if shared else f"{_store_folder(plan.table.name, version)}/{name}"
        os.symlink(f"{up}/{part.folder}", links / name)


def _write_partitions(
    con: duckdb.DuckDBPyConnection, plan: _TablePlan, folder: Path, version: str, files: _VersionFiles, share: bool
) -> None:
    """Write the changed day partitions from the warehouse into the store (one COPY), and the unchanged
    ones when not ``share`` (copies of the previous version's: see ``_write_version``), where
    ``_link_partitions`` linked them."""
    table, day = plan.table, plan.day
    serving_dir = _serving_dir(folder)
    to_write = sorted(key for key, part in plan.parts.items() if part.reuse is None)
    if to_write:
        where = ""
        if len(to_write) < len(plan.parts):
            days = [dt.date.fromisoformat(key) for key in to_write if key != NULL_PARTITION]
            where = _days_filter(day, days, with_null=NULL_PARTITION in to_write)
        columns = [ident(column) for column, _ in table.columns if day.derived or column != day.source]
        target = serving_dir / _store_folder(table.name, version)
        files.folders.extend(file_modes.make_dirs(target))
        con.execute(
            f"""
            copy (
                select {", ".join(columns)}, {day.expression} as {ident(day.key)}
                from {table.source}
                {where}
            ) to $target (format parquet, compression zstd, partition_by ({ident(day.key)}), filename_pattern 'part{{i}}')
            """,
            {"target": str(target)},
        )
        written = sorted(path.name.split("=", 1)[1] for path in target.iterdir())
        if written != to_write:
            raise RuntimeError(
                f"publishing {table.name}: DuckDB wrote the partitions {written[:5]}..., expected {to_write[:5]}..."
            )
    previous = plan.previous["partitions"] if plan.previous else {}
    for key, part in sorted(plan.parts.items()):
        name = f"{day.key}={key}"
        if part.reuse is None:
            stored = sorted((serving_dir / part.folder).iterdir())
            files.counts.written += len(stored)
            files.fresh.extend(stored)
            files.folders.append(serving_dir / part.folder)
            part.files = [f"{plan.parquet}/{name}/{path.name}" for path in stored]
            continue
        part.files = list(previous[key]["files"])
        if share:
            files.counts.linked += len(part.files)
            continue
        files.folders.extend(file_modes.make_dirs(serving_dir / part.folder))
        for path in part.files:
            copy = serving_dir / part.folder / Path(path).name
            shutil.copyfile(serving_dir / str(part.reuse) / copy.name, copy)
            files.fresh.append(copy)
        files.counts.copied += len(part.files)


def _write_one_file(
    con: duckdb.DuckDBPyConnection, plan: _TablePlan, folder: Path, files: _VersionFiles, share: bool
) -> None:
    """Write the table's one file, or link the previous version's."""
    target = folder / plan.parquet
    [part] = plan.parts.values()
    part.files = [plan.parquet]
    if part.reuse is None:
        con.execute(
            f"copy (select {plan.table.column_list} from {plan.table.source}) to $target (format parquet, compression zstd)",
            {"target": str(target)},
        )
        files.counts.written += 1
        files.fresh.append(target)
    elif _link_or_copy(Path(part.reuse), target, share):
        files.counts.linked += 1
    else:
        files.counts.copied += 1
        files.fresh.append(target)


def _parquet_view(con: duckdb.DuckDBPyConnection, plan: _TablePlan, final: Path) -> str:
    """SQL of the view that serves a Parquet-stored table, reading the version's files by absolute path.

    A relative path would be resolved against each reader's working
    directory, not the DuckDB file's folder, so it is absolute (the final
    folder, which a reader resolves through ``current``). Columns are listed in
    the table's order and cast where Parquet would give another type.
    """
    if plan.day is None:
        source = f"read_parquet({literal(final / plan.parquet)})"
    else:
        pattern = final / plan.parquet / "*" / "*.parquet"
        source = (
            f"read_parquet({literal(pattern)}, hive_partitioning = true, "
            f"hive_types = {{{literal(plan.day.key)}: 'DATE'}})"
        )
    read_types = dict(con.execute(f"select column_name, column_type from (describe select * from {source})").fetchall())
    columns = [
        ident(column) if read_types.get(column) == data_type else f"cast({ident(column)} as {data_type}) as {ident(column)}"
        for column, data_type in plan.table.columns
    ]
    return f"select {', '.join(columns)} from {source}"


def _served_objects(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, str]:
    """``schema.name`` -> ``BASE TABLE`` or ``VIEW``, for every table and view of an attached database."""
    return {
        f"{schema}.{name}": kind
        for schema, name, kind in con.execute(
            "select table_schema, table_name, table_type from information_schema.tables where table_catalog = ?",
            [catalog],
        ).fetchall()
    }


def _write_database(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    final: Path,
    plans: Sequence[_TablePlan],
    previous: Snapshot | None,
    progress: Callable[[str], None],
) -> None:
    """The version's DuckDB file: small tables held in it, views over the Parquet files of the large ones.

    It starts as a copy of the previous version's file (never a link: it is
    changed), so a small table that did not change is not copied again from
    the warehouse; a changed one is dropped and created anew (deleting and
    inserting its changed days instead would leave the deleted rows' space in
    the file, which then grows version after version; a dropped table's
    blocks are reused), and so is every view, to read this version's files.

    DuckDB binds a view when it is created, so the Parquet files must be
    readable at the final path by then: a temporary symlink
    ``versions/<version> -> .<version>.partial`` stands in for the folder while
    the views are created, and is removed before the folder is renamed there.
    """
    database = folder / DATABASE_FILE
    catalog = "served_snapshot"
    final.symlink_to(folder.name)
    try:
        progress(f"writing {DATABASE_FILE}")
        if previous is not None and all("storage" in entry for entry in previous.tables.values()):
            # Copied by a child process: closing a descriptor of the file here would drop every POSIX
            # lock this process holds on it, such as a reader's DuckDB lock, which pruning looks for.
            subprocess.run(["cp", str(previous.database), str(database)], check=True, capture_output=True, text=True)
        con.execute(f"attach {literal(database)} as {catalog}")
        try:
            existing = _served_objects(con, catalog)
            wanted = {plan.table.name for plan in plans}
            for name, kind in existing.items():
                if name not in wanted:
                    con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} {catalog}.{name}")
            for schema in sorted({plan.table.name.split(".")[0] for plan in plans}):
                con.execute(f"create schema if not exists {catalog}.{schema}")
            def serve(plan: _TablePlan) -> None:
                name, kind = plan.table.name, existing.get(plan.table.name)
                if plan.storage == STORED_IN_DUCKDB and kind == "BASE TABLE" and plan.change() == "reused":
                    return  # the same rows, already in the copy
                if kind is not None:
                    con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} {catalog}.{name}")
                if plan.storage == STORED_IN_DUCKDB:
                    con.execute(
                        f"create table {catalog}.{name} as select {plan.table.column_list} from {plan.table.source}"
                    )
                else:
                    con.execute(f"create view {catalog}.{name} as {_parquet_view(con, plan, final)}")

            for plan in plans:
                serve(plan)
            con.execute(f"checkpoint {catalog}")
        finally:
            con.execute(f"detach {catalog}")
    finally:
        final.unlink()


def _manifest_entry(plan: _TablePlan) -> dict:
    entry = {
        "rows": plan.rows,
        "storage": plan.storage,
        "parquet": plan.parquet,
        "partition_by": plan.day.key if plan.day else None,
        "columns": [list(column) for column in plan.table.columns],
        "content_hash": str(plan.content),
    }
    if plan.day is not None:
        entry["partitions"] = {
            key: {"rows": part.rows, "content_hash": str(part.content), "files": part.files, "folder": part.folder}
            for key, part in sorted(plan.parts.items())
        }
    return entry


def _change_entry(plan: _TablePlan) -> dict:
    change = {
        "change": plan.change(),
        "rows": plan.rows,
        "rows_before": plan.previous_rows,
        "known_from": plan.known_from,
    }
    if plan.day is not None:
        change["partitions_rewritten"] = sorted(key for key, part in plan.parts.items() if part.reuse is None)
        change["partitions_reused"] = sum(part.reuse is not None for part in plan.parts.values())
        change["partitions_removed"] = plan.removed
    return change


def _fsync(paths: Iterable[Path]) -> None:
    """fsync files and folders, several at a time: a journaling file system commits concurrent ones together."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(file_modes.fsync_path, paths))


def _write_version(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    final: Path,
    plans: Sequence[_TablePlan],
    previous: Snapshot | None,
    manifest: dict,
    progress: Callable[[str], None],
) -> None:
    """Fill ``folder`` (to be renamed ``final``) with the Parquet files, the DuckDB file and the manifest."""
    version = final.name
    # A shared or hard-linked file has one mode: after CONVO_FILE_MODE changed, the unchanged files are
    # copied (with the new mode) rather than shared, and the versions before keep the mode they had.
    share = previous is not None and previous.manifest.get("file_mode") == manifest["file_mode"]
    files = _VersionFiles()
    # The folder is private from its creation (CONVO_FILE_MODE), so nobody else reads a file
    # DuckDB creates with the umask's mode before apply() below tightens it.
    files.folders.extend(file_modes.make_dirs(folder / PARQUET_DIR))
    progress("linking the day partitions")
    for plan in plans:
        if plan.day is not None:
            _link_partitions(plan, folder, version, files, share)

    def write(plan: _TablePlan, cursor: duckdb.DuckDBPyConnection) -> _VersionFiles:
        written = _VersionFiles()  # merged below: each table's writes are counted apart
        if plan.day is not None:
            _write_partitions(cursor, plan, folder, version, written, share)
        else:
            _write_one_file(cursor, plan, folder, written, share)
        return written

    for written in _side_by_side(con, write, plans, before=lambda plan: progress(f"publishing {plan.table.name}")):
        files.merge(written)
    _write_database(con, folder, final, plans, previous, progress)
    manifest["tables"] = {plan.table.name: _manifest_entry(plan) for plan in plans}
    manifest["changes"]["tables"] = {plan.table.name: _change_entry(plan) for plan in plans}
    manifest["changes"]["files"] = dataclasses.asdict(files.counts)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # The writes name every new file and folder, so the modes and the fsyncs need no walk (thousands of
    # day partitions, nearly all shared). Shared partitions already have the mode and are on disk; a new
    # folder's entry is in its parent, fsynced too.
    written = [*files.fresh, folder / DATABASE_FILE, folder / MANIFEST_FILE]
    file_modes.apply(files=written, folders=files.folders)
    _fsync(written)
    _fsync(sorted({*files.folders, *(created.parent for created in files.folders)} - {folder.parent}))


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
    file_modes.fsync_path(serving_dir)


def _held_open(folder: Path) -> bool:
    """Whether a process (this one included) holds the version's DuckDB file open."""
    return bool(lock_holders(folder / DATABASE_FILE, include_self=True))


def _prune(serving_dir: Path, keep: int, current: str) -> tuple[list[str], list[str]]:
    """Delete all but the newest ``keep`` versions and leftovers of failed publishes.

    Never the current version, and never one whose DuckDB file a process holds
    open: its views read its Parquet files by path. Such a version is deleted
    by a later publish, once its readers have closed it. Files a kept version
    shares stay: deleting a folder removes its names (a hard link's other name
    stays), and the store's partitions go only once no version names them
    (``_collect_partitions``).
    """
    versions_dir = serving_dir / VERSIONS_DIR
    leftovers = False
    for leftover in versions_dir.iterdir():
        if leftover.is_symlink():
            leftover.unlink()  # a stand-in of an interrupted publish (see _write_database)
            leftovers = True
        elif leftover.name.startswith(".") and leftover.name.endswith(PARTIAL_SUFFIX):
            shutil.rmtree(leftover, ignore_errors=True)
            leftovers = True
    pruned, held = [], []
    for version in list_versions(serving_dir)[:-keep]:
        if version == current:
            continue
        if _held_open(versions_dir / version):
            held.append(version)
            continue
        shutil.rmtree(versions_dir / version)
        pruned.append(version)
    if pruned or leftovers:
        _collect_partitions(serving_dir)
    return pruned, held


def _collect_partitions(serving_dir: Path) -> None:
    """Delete the day partitions of the store that no version names any more (pruned, or written by a
    publish that did not finish), and the folders they leave empty.

    What the versions name is read from their manifests. A folder of the store is written once, by the
    version in its name, and named by that version and later ones until they are all pruned.
    """
    named = set()
    for version in list_versions(serving_dir):
        try:
            manifest = json.loads((serving_dir / VERSIONS_DIR / version / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            return  # what that version names is unknown: delete nothing (a later publish collects)
        for entry in manifest["tables"].values():
            named.update(part.get("folder") for part in entry.get("partitions", {}).values())
    store = serving_dir / PARTITIONS_DIR
    if not store.is_dir():
        return
    for table in store.iterdir():
        for writer in table.iterdir():
            for partition in writer.iterdir():
                if f"{_store_folder(table.name, writer.name)}/{partition.name}" not in named:
                    shutil.rmtree(partition)
            if not any(writer.iterdir()):
                writer.rmdir()
        if not any(table.iterdir()):
            table.rmdir()


def _newest_event_at(con: duckdb.DuckDBPyConnection, tables: Sequence[ServedTable]) -> str | None:
    if "marts.fct_conversations" not in {table.name for table in tables}:
        return None
    value = con.execute("select max(last_event_at) from marts.fct_conversations").fetchone()[0]
    return value.isoformat() if value is not None else None


def _history_since(previous: Snapshot | None) -> dt.datetime | None:
    value = (previous.manifest if previous else {}).get("partitions_recorded_until")
    return dt.datetime.fromisoformat(value) if value else None


@contextlib.contextmanager
def _read_views_once(con: duckdb.DuckDBPyConnection, tables: Sequence[ServedTable]) -> Iterator[list[ServedTable]]:
    """The served tables, each view's served columns read once into a table the publish reads instead.

    A served view (an aggregate over day tables, the quarantine's verdicts) computes its rows each
    time it is read, and the publish reads a table up to three times (its rows counted, hashed,
    written): read once, the three agree, and the view costs one computation. The tables are in an
    in-memory database attached for the publish, which every cursor of the warehouse's connection
    sees, so the views are read side by side (``_side_by_side``) and the copies written so too.
    """
    views = [(number, table) for number, table in enumerate(tables) if table.is_view]
    if not views:
        yield list(tables)
        return
    con.execute(f"attach ':memory:' as {READ_ONCE}")
    try:
        def read(item: tuple[int, ServedTable], cursor: duckdb.DuckDBPyConnection) -> None:
            number, table = item
            cursor.execute(f"create table {READ_ONCE}.main.view_{number} as select {table.column_list} from {table.source}")

        _side_by_side(con, read, views)
        yield [
            dataclasses.replace(table, read_from=f"{READ_ONCE}.main.view_{number}") if table.is_view else table
            for number, table in enumerate(tables)
        ]
    finally:
        con.execute(f"detach database if exists {READ_ONCE}")


def _side_by_side(
    con: duckdb.DuckDBPyConnection, work: Callable, items: Sequence, before: Callable = lambda item: None
) -> list:
    """``work(item, cursor)`` for every item, in order, ``PUBLISH_THREADS`` at a time, each on a cursor
    of its own (DuckDB runs a cursor's statement outside Python's interpreter lock, so the
    statements of a publish, most of them too small for DuckDB to spread over its own threads,
    overlap); their results in the items' order. An item is handed over when one of those ended,
    and ``before(item)`` runs in this thread just then (progress reports say what is being done: a
    callback may not be safe to call from another thread). The first error is raised once the
    items already started have ended; the others do not start."""
    def on_a_cursor(item):
        cursor = con.cursor()
        try:
            return work(item, cursor)
        finally:
            cursor.close()

    results: list = [None] * len(items)
    running: dict[concurrent.futures.Future, int] = {}

    def collect(when: str) -> None:
        ended, _ = concurrent.futures.wait(running, return_when=when)
        for future in ended:
            results[running.pop(future)] = future.result()

    with concurrent.futures.ThreadPoolExecutor(max_workers=PUBLISH_THREADS) as pool:
        for index, item in enumerate(items):
            if len(running) >= PUBLISH_THREADS:
                collect(concurrent.futures.FIRST_COMPLETED)
            before(item)
            running[pool.submit(on_a_cursor, item)] = index
        collect(concurrent.futures.ALL_COMPLETED)
    return results


def publish(
    con: duckdb.DuckDBPyConnection,
    serving_dir: Path,
    *,
    run_id: str,
    tests: dict,
    keep: int | None = None,
    large: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> PublishResult:
    """Publish the served tables of the warehouse ``con`` as a new snapshot version.

    ``tests`` is the run's test status, copied into the manifest. ``large``
    (default ``CONVO_SERVING_PARQUET_ROWS``) is the row count from which a
    table is served from Parquet. When the data equals the current snapshot's,
    nothing is written and the current snapshot is returned (``created``
    false). The caller holds the writer lock, so no two publishes run at once.
    """
    keep = keep_versions() if keep is None else keep
    large = parquet_rows() if large is None else large
    file_modes.file_mode()  # a bad CONVO_FILE_MODE fails before anything is written
    with _read_views_once(con, served_tables(con)) as tables:
        return _publish(con, serving_dir, tables, run_id=run_id, tests=tests, keep=keep, large=large,
                        progress=progress, now=now)


def _publish(
    con: duckdb.DuckDBPyConnection,
    serving_dir: Path,
    tables: Sequence[ServedTable],
    *,
    run_id: str,
    tests: dict,
    keep: int,
    large: int,
    progress: Callable[[str], None],
    now: Callable[[], dt.datetime],
) -> PublishResult:
    if not tables:
        raise RuntimeError(
            "nothing to publish: the warehouse has no marts yet. Run the whole pipeline "
            "(`convo-warehouse run`) before publishing."
        )
    try:
        previous = current_snapshot(serving_dir)
    except SnapshotNotFoundError:
        previous = None
    history = read_partition_history(con, _history_since(previous))
    progress(f"comparing {len(tables)} tables with the current snapshot")
    plans = _plan(con, tables, previous, history, large)
    content = _fingerprint((plan.table, plan.rows, plan.content) for plan in plans)
    if previous is not None and previous.manifest.get("fingerprint") == content:
        return PublishResult(snapshot=previous, created=False, pruned=[])

    published_at = now()
    version = f"{published_at:%Y%m%dT%H%M%S%fZ}-{content[:8]}"
    versions_dir = Path(os.path.abspath(serving_dir)) / VERSIONS_DIR
    file_modes.make_dirs(versions_dir)
    partial = versions_dir / f".{version}{PARTIAL_SUFFIX}"
    final = versions_dir / version
    newest_recorded = history.newest_recorded_at
    manifest = {
        "version": version,
        "run_id": run_id,
        "published_at": published_at.isoformat(),
        "newest_event_at": _newest_event_at(con, tables),
        "fingerprint": content,
        "tests": tests,
        "partitions_recorded_until": newest_recorded.isoformat() if newest_recorded else None,
        "file_mode": oct(file_modes.file_mode()),
        "changes": {
            "previous_version": previous.version if previous else None,
            "history": history.reason,
            "removed_tables": sorted(set(previous.tables) - {table.name for table in tables}) if previous else [],
        },
        "tables": {},
    }
    try:
        _write_version(con, partial, final, plans, previous, manifest, progress)
        os.rename(partial, final)
        # The rename is recorded in versions/: without this a crash could lose the version `current` names.
        file_modes.fsync_path(versions_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        for plan in plans:
            shutil.rmtree(serving_dir / _store_folder(plan.table.name, version), ignore_errors=True)
        if final.is_symlink():
            final.unlink()
        raise
    _switch_pointer(serving_dir, version)
    pruned, held = _prune(serving_dir, keep, version)
    # the manifest just written, not read back: a large history's is megabytes of JSON
    return PublishResult(snapshot=Snapshot(final.resolve(), manifest), created=True, pruned=pruned, held=held)
