"""The raw tables, and what the loader has seen and loaded before.

``raw.loaded_files`` holds one row per file loaded (its content hash: a hash
seen before is never loaded again); ``raw.landing_files_seen`` the size,
mtime and hash of every landing file when it was last read, so an unchanged
file is not even opened by the next run.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

RAW_EVENTS_DDL = """
create schema if not exists raw;
create table if not exists raw.events (
    load_id integer not null,
    loaded_at timestamp not null,
    source_file varchar not null,
    file_hash varchar not null,
    row_number bigint not null,
    -- zstd for the long, nearly unique texts (ids, timestamps as sent, JSON):
    -- much smaller than DuckDB's default dictionary + FSST for them. Not for
    -- raw_record, a line kept only when no field of it could be read: on a
    -- column that is nearly always null, zstd's segments take more room.
    event_id varchar using compression zstd,
    conversation_id varchar,
    session_id varchar,
    user_id varchar,
    customer_id varchar,
    event_type varchar,
    event_timestamp varchar using compression zstd,
    channel varchar,
    properties varchar using compression zstd,
    raw_record varchar,
    parse_error varchar,
    typed_fields varchar using compression zstd
);
-- warehouses created before typed_fields existed
alter table raw.events add column if not exists typed_fields varchar;
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
    con.execute(RAW_EVENTS_DDL)


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
