"""The raw rows: zstd Parquet files beside the warehouse, read through the view ``raw.events``.

Every raw row is kept, but not in the DuckDB file: the parsed copy
(``staging.base_events_parsed``) is what the models read, and the raw rows are
only read again when a load run is parsed (its first build, a full refresh, a
changed field alias) or a quarantined row is shown. Held as Parquet they take
a fraction of the room they took as a DuckDB table (docs/staging.md#what-is-stored).

Layout: ``<warehouse>.raw/events/load_id=<N>/<k>.parquet``, one file per
landing file a load run read (``k`` is its place in the run). ``raw.events``
is a view over them, with ``load_id`` from the folder name, so a filter on
load runs opens only their folders.

A load run is still one transaction. Its files are written under
``.pending/`` and moved into place just before the commit, which also
redefines the view to read load runs up to this one. So a run interrupted
before its commit leaves files no reader sees (the view stops at the last
committed load run), and the next run deletes them before it starts.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb

from convo_warehouse.lib import file_modes
from convo_warehouse.lib.landing.rows import RAW_ROW_COLUMNS
from convo_warehouse.lib.warehouse import sql_literal

# raw.events's columns in order, with their types.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("load_id", "integer"),
    ("loaded_at", "timestamp"),
    ("source_file", "varchar"),
    ("file_hash", "varchar"),
    ("row_number", "bigint"),
    *((name, "varchar") for name in RAW_ROW_COLUMNS[1:]),
)
PENDING = ".pending"


def archive_dir(con: duckdb.DuckDBPyConnection) -> Path:
    """``<warehouse>.raw/events`` beside the connection's DuckDB file."""
    (path,) = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    if not path:
        raise ValueError(
            "the raw rows are kept beside the warehouse file: open a warehouse file, not an in-memory database"
        )
    warehouse = Path(path).resolve()
    return warehouse.with_name(warehouse.name.removesuffix(".duckdb") + ".raw") / "events"


def write_file(
    con: duckdb.DuckDBPyConnection,
    load_id: int,
    index: int,
    loaded_at: datetime,
    source_file: str,
    file_hash: str,
    staged: str,
) -> tuple[int, int]:
    """The rows of ``staged`` (``RAW_ROW_COLUMNS``) as one pending Parquet file of load run
    ``load_id``; (rows, rows with a ``parse_error``) written."""
    folder = archive_dir(con) / PENDING / f"load_id={load_id}"
    file_modes.make_dirs(folder)
    path = folder / f"{index:06d}.parquet"
    columns = ",\n".join(
        f"cast({name} as {kind}) as {name}" for name, kind in COLUMNS[4:]
    )
    con.execute(
        f"""
        copy (
            select
                cast({sql_literal(loaded_at.isoformat(sep=" "))} as timestamp) as loaded_at,
                {sql_literal(source_file)} as source_file,
                {sql_literal(file_hash)} as file_hash,
                {columns}
            from {staged}
        ) to {sql_literal(str(path))} (format parquet, compression zstd)
        """
    )
    file_modes.restrict(path)
    # counted in what was written: the staged rows may be a stream, read once
    rows, unreadable = con.execute(
        f"select count(*), count(parse_error) from read_parquet({sql_literal(str(path))})"
    ).fetchone()
    return rows, unreadable


def commit_files(con: duckdb.DuckDBPyConnection, load_id: int) -> None:
    """Move load run ``load_id``'s pending files into place and point ``raw.events`` at them;
    called inside the run's transaction, just before its commit."""
    root = archive_dir(con)
    pending = root / PENDING / f"load_id={load_id}"
    if not pending.exists():
        return
    for path in pending.iterdir():
        file_modes.fsync_path(path)
    file_modes.fsync_path(pending)
    final = root / pending.name
    shutil.rmtree(final, ignore_errors=True)  # left by a run that failed before its commit
    os.replace(pending, final)
    pending.parent.rmdir()  # one load run at a time (the writer lock): nothing else is pending
    file_modes.fsync_path(root)
    _define_view(con, root, load_id)


def discard_pending(con: duckdb.DuckDBPyConnection) -> None:
    """Delete the files of load runs that did not commit (an interrupted run, or an attempt
    the loader started over)."""
    shutil.rmtree(archive_dir(con) / PENDING, ignore_errors=True)


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Before a load run: delete what an interrupted run left, move a warehouse's ``raw.events``
    table (warehouses before the archive) to Parquet, and point the view at this warehouse's
    archive (a copied warehouse folder reads its own files). Writes nothing when all is in order."""
    root = archive_dir(con)
    discard_pending(con)
    (kind,) = con.execute(
        "select coalesce(max(table_type), '') from information_schema.tables "
        "where table_schema = 'raw' and table_name = 'events'"
    ).fetchone()
    if kind == "BASE TABLE":
        _move_table(con, root)
    (last,) = con.execute("select max(load_id) from raw.loaded_files").fetchone()
    for folder in root.glob("load_id=*") if root.exists() else ():
        if last is None or int(folder.name.removeprefix("load_id=")) > last:
            shutil.rmtree(folder)  # moved into place, but its run never committed
    if _view_sql(con) != _view_query(root, last):
        _define_view(con, root, last)


def _move_table(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """The ``raw.events`` table's rows -> one Parquet file per load run; the table dropped."""
    shutil.rmtree(root, ignore_errors=True)  # an earlier move, interrupted: the table is the truth
    file_modes.make_dirs(root)
    con.execute("alter table raw.events add column if not exists typed_fields varchar")  # older still
    names = ", ".join(name for name, _ in COLUMNS)
    con.execute(
        f"""
        copy (select {names} from raw.events order by load_id, source_file, row_number)
        to {sql_literal(str(root))}
        (format parquet, compression zstd, partition_by (load_id), filename_pattern 'moved_{{i}}')
        """
    )
    for folder in root.iterdir():
        for path in folder.iterdir():
            file_modes.restrict(path)
            file_modes.fsync_path(path)
    con.execute("begin transaction")
    con.execute("drop table raw.events")
    (last,) = con.execute("select max(load_id) from raw.loaded_files").fetchone()
    _define_view(con, root, last)
    con.execute("commit")


def _view_query(root: Path, last_load_id: int | None) -> str:
    names = ", ".join(name for name, _ in COLUMNS)
    if last_load_id is None or not any(root.glob("load_id=*/*.parquet")):
        empty = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in COLUMNS)
        return f"select {empty} where false"
    files = sql_literal(str(root / "load_id=*" / "*.parquet"))
    return (
        f"select {names} from read_parquet({files}, hive_partitioning = true, "
        f"hive_types = {{'load_id': integer}}) where load_id <= {int(last_load_id)}"
    )


def _view_sql(con: duckdb.DuckDBPyConnection) -> str | None:
    """The query ``raw.events`` was defined with, as written (its comment: DuckDB keeps the
    view's SQL reformatted)."""
    row = con.execute(
        "select comment from duckdb_views() where schema_name = 'raw' and view_name = 'events'"
    ).fetchone()
    return None if row is None else row[0]


def _define_view(con: duckdb.DuckDBPyConnection, root: Path, last_load_id: int | None) -> None:
    query = _view_query(root, last_load_id)
    con.execute(f"create or replace view raw.events as {query}")
    con.execute(f"comment on view raw.events is {sql_literal(query)}")
