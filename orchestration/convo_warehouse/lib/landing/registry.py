"""The raw tables, and what the loader has seen and loaded before.

The raw rows themselves are Parquet files beside the warehouse, read through
the view ``raw.events`` (:mod:`.archive`).

``raw.loaded_files`` holds one row per file loaded (its content hash: a hash
seen before is never loaded again); ``raw.landing_files_seen`` the size,
mtime and hash of every landing file when it was last read, so an unchanged
file is not even opened by the next run.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from convo_warehouse.lib.landing import archive

RAW_TABLES_DDL = """
create schema if not exists raw;
create table if not exists raw.loaded_files (
    load_id integer not null,
    loaded_at timestamp not null,
    source_file varchar not null,
    file_hash varchar not null,
    file_format varchar not null,
    file_bytes bigint not null,
    raw_rows bigint not null
);
create table if not exists raw.landing_files_seen (
    source_file varchar not null,
    file_bytes bigint not null,
    modified_ns bigint not null,
    file_hash varchar not null,
    seen_at timestamp not null
);
"""


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The ledgers, and ``raw.events`` over this warehouse's archive of raw rows (:mod:`.archive`)."""
    con.execute(RAW_TABLES_DDL)
    archive.prepare(con)


def next_load_id(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("select coalesce(max(load_id), 0) + 1 from raw.loaded_files").fetchone()[0]


def known_hashes(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Content hashes of every file loaded before."""
    return {row[0] for row in con.execute("select file_hash from raw.loaded_files").fetchall()}


def seen_signatures(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every landing file when the loader last read it, by relative path."""
    return {
        source_file: (size, modified)
        for source_file, size, modified in con.execute(
            "select source_file, file_bytes, modified_ns from raw.landing_files_seen"
        ).fetchall()
    }


def record_seen(
    con: duckdb.DuckDBPyConnection,
    relative: str,
    signature: tuple[int, int],
    digest: str,
    seen_at: datetime,
) -> None:
    """Remember a file's size, mtime and hash, so an unchanged file is never read again."""
    con.execute("delete from raw.landing_files_seen where source_file = ?", [relative])
    con.execute(
        "insert into raw.landing_files_seen values (?, ?, ?, ?, ?)", [relative, *signature, digest, seen_at]
    )


def record_loaded_file(
    con: duckdb.DuckDBPyConnection,
    load_id: int,
    loaded_at: datetime,
    relative: str,
    digest: str,
    file_format: str,
    file_bytes: int,
    raw_rows: int,
) -> None:
    con.execute(
        "insert into raw.loaded_files values (?, ?, ?, ?, ?, ?, ?)",
        [load_id, loaded_at, relative, digest, file_format, file_bytes, raw_rows],
    )
