"""One load run: every new landing file into ``raw.events`` (:mod:`.archive`), in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from tqdm import tqdm

from convo_warehouse.lib.landing import archive, csv_file, files, jsonl, otlp, parquet, registry
from convo_warehouse.lib.landing.jsonl import MAX_LINE_BYTES
from convo_warehouse.lib.landing.rows import STAGED_ROWS, Reader, stage_unreadable_file
from convo_warehouse.lib.warehouse import memory_capped

READERS: dict[str, Reader] = {
    "otlp.jsonl": otlp.READER,
    "otlp.jsonl.gz": otlp.READER,
    "jsonl": jsonl.READER,
    "jsonl.gz": jsonl.READER,
    "parquet": parquet.READER,
    "csv": csv_file.READER,
}


@dataclass
class LoadReport:
    """What one loader run did."""

    load_id: int
    loaded_at: datetime
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    # links to files outside the landing folder: never read
    files_refused: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    unreadable_rows: int = 0

    def summary(self) -> str:
        refused = (
            f"; {len(self.files_refused)} link(s) to files outside the landing folder not loaded: "
            + ", ".join(self.files_refused[:5])
            if self.files_refused
            else ""
        )
        return (
            f"load {self.load_id}: {len(self.files_loaded)} new file(s), "
            f"{len(self.files_skipped)} already loaded, {self.rows_loaded} raw rows "
            f"({self.unreadable_rows} unreadable){refused}"
        )


# DuckDB's memory cap while loading. The loader holds one file's lines at a
# time and a large append goes straight to the database file, but DuckDB
# keeps what it has written cached up to its cap: under the warehouse's cap a
# large load would hold that much for nothing. A lower cap keeps the loader
# within its memory target and costs it no time (docs/benchmarks.md, "What
# limits each figure").
LOADER_MEMORY_LIMIT = "1GB"

# Errors of the machine, not of a file: they stop the run.
_NOT_A_FILE_ERROR = (MemoryError, duckdb.OutOfMemoryException, duckdb.InterruptException)


def load_landing(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, progress: bool = True
) -> LoadReport:
    """Load every file not loaded before (by content hash) into ``raw.events``.

    A file whose size and modification time are those recorded in
    ``raw.landing_files_seen`` when it was last read is skipped without being
    opened; any other file is hashed, and loaded if its content is new.

    One load run is one transaction: its rows (Parquet files, which
    ``raw.events`` reads from the commit on) and its entries in
    ``raw.loaded_files`` commit together, so an interrupted run leaves nothing
    a reader sees and the next run loads the same files again.

    The files are read on a cursor of their own, outside that transaction:
    reading writes only a pending Parquet file, and DuckDB scans a temporary
    table written inside a transaction about half as fast (the JSONL reader's
    lines). A file that fails to read therefore aborts nothing.

    No file stops the run. A file DuckDB's reader would fail on is read by
    the format's fallback (Python, for JSONL); a file no reader can read, or
    that cannot be opened at all, becomes one row with the error, which
    staging quarantines as ``unreadable_file``; rows a Python reader read
    before an error are kept. Each new file is checked before it is read
    (``_known_problem``: for JSONL the reasons DuckDB's line reader fails,
    for Parquet its footer), so it goes straight to its fallback; a failure
    none of those checks foresaw sends the file to its fallback then.
    """
    landing_dir = Path(landing_dir)
    registry.ensure_raw_tables(con)
    found = files.discover(landing_dir)
    with memory_capped(con, LOADER_MEMORY_LIMIT):
        return _load_files(con, landing_dir, found, progress)


def _load_files(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, found: files.Discovery, progress: bool
) -> LoadReport:
    load_id = registry.next_load_id(con)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    report = LoadReport(load_id=load_id, loaded_at=loaded_at, files_refused=list(found.refused))
    known = registry.known_hashes(con)
    seen = registry.seen_signatures(con)
    archive.discard_pending(con)
    reader_con = con.cursor()

    con.execute("begin transaction")
    try:
        bar = tqdm(found.files, desc="loading landing files", unit="file", disable=not progress)
        for path in bar:
            relative = path.relative_to(landing_dir).as_posix()
            # a plain JSONL file is checked for what DuckDB's reader fails on while it is hashed
            check = files.LineCheck(MAX_LINE_BYTES) if files.file_format(path) == "jsonl" else None
            # the errors met reading the file: one means "use the fallback",
            # two "no reader can: one unreadable row"
            errors: list[Exception] = []
            try:
                signature = files.file_signature(path)
                digest = None if seen.get(relative) == signature else files.content_hash(path, check)
            except OSError as error:
                # cannot even be opened (permissions, gone): one row with the
                # error, under a stand-in hash; not remembered as seen, so
                # the next run tries again and loads it once it can be read
                signature, digest = (0, 0), files.unopenable_hash(relative, error)
                errors = [error, error]
            if digest is None:
                report.files_skipped.append(relative)
                continue
            if not digest.startswith(files.UNOPENABLE):
                registry.record_seen(con, relative, signature, digest, loaded_at)
            if digest in known:
                report.files_skipped.append(relative)
                continue
            bar.set_postfix_str(relative[-40:])
            fmt = files.file_format(path)
            errors = errors or _known_problem(path, fmt, check)
            rows, unreadable = _read_file(reader_con, path, fmt, errors, load_id, len(report.files_loaded),
                                          loaded_at, relative, digest)
            registry.record_loaded_file(con, load_id, loaded_at, relative, digest, fmt, signature[0], rows)
            known.add(digest)
            report.files_loaded.append(relative)
            report.rows_loaded += rows
            report.unreadable_rows += unreadable
        archive.commit_files(con, load_id)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        reader_con.close()
    return report


def _read_file(
    reader_con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    errors: list[Exception],
    load_id: int,
    index: int,
    loaded_at: datetime,
    relative: str,
    digest: str,
) -> tuple[int, int]:
    """One file's raw rows as its pending Parquet file: (rows, unreadable rows). Each error
    reading it moves it one step down: its reader's fast path, its fallback, one unreadable row."""
    while True:
        try:
            if len(errors) >= 2:
                stage_unreadable_file(reader_con, errors[0])
            else:
                READERS[fmt].stage(reader_con, path, errors[0] if errors else None)
            return archive.write_file(reader_con, load_id, index, loaded_at, relative, digest, STAGED_ROWS)
        except _NOT_A_FILE_ERROR:
            raise
        except Exception as error:  # noqa: BLE001 - reading one file never stops the run
            if len(errors) >= 2:
                raise  # the unreadable row itself could not be written: not the file's fault
            errors.append(error)
        finally:
            _drop_staged(reader_con)


def _known_problem(path: Path, fmt: str, check: files.LineCheck | None) -> list[Exception]:
    """What a file's fast reader would fail on, found before reading it inside the transaction:
    [] for none, [error] to read it with the fallback, [error, error] for no reader at all.
    ``check``: the line check fed while the file was hashed (plain JSONL)."""
    try:
        if fmt == "jsonl.gz":
            # DuckDB would take a truncated stream for whole, or fail on its lines: the fallback
            # reads up to the break and reports it on the file
            problem = files.gzip_problem(path, files.LineCheck(MAX_LINE_BYTES))
        elif fmt.endswith(".gz"):
            problem = files.gzip_problem(path)
        elif fmt == "jsonl":
            problem = check.finish() if check is not None else files.line_problem(path, MAX_LINE_BYTES)
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                pq.read_metadata(path)
            except Exception as error:  # noqa: BLE001 - any reason it is no Parquet file
                return [error, error]
            problem = None
        else:
            problem = None
    except OSError as error:
        return [error, error]
    return [ValueError(problem)] if problem else []


def _drop_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables and views a reader left (all named ``_landing_...``)."""
    for name in ("_landing_line_stream", "_landing_python_rows"):
        con.unregister(name)
    staged = con.execute(
        """
        select table_name, table_type
        from information_schema.tables
        where table_catalog = 'temp' and starts_with(table_name, '_landing_')
        """
    ).fetchall()
    for name, kind in sorted(staged, key=lambda item: item[1] != "VIEW"):  # views first
        con.execute(f"drop {'view' if kind == 'VIEW' else 'table'} if exists {name}")
