"""The raw row every reader produces, and the reader interface.

A reader turns one landing file into raw rows with the columns
``RAW_ROW_COLUMNS`` (the load run, file and hash are added by the load):
the row number in the file, the contract fields as text, and for a row that
cannot be read its text and the reason (``parse_error``). Fields text cannot
carry go to ``typed_fields`` as JSON.

The loader stages a file by calling ``reader.stage(con, path, failure)``,
which leaves the temporary relation ``_landing_rows`` with those columns.
Readers that read in Python (CSV, OTLP) also expose ``rows(path)``: the
same rows as :class:`RawRow`, streamed, for any engine (the Spark loader
uses it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

import duckdb
import pyarrow as pa

# Contract fields copied as text, in raw.events column order.
FIELDS = (
    "event_id",
    "conversation_id",
    "session_id",
    "user_id",
    "customer_id",
    "event_type",
    "timestamp",
    "channel",
    "properties",
)
# Fields staging checks the JSON type of (an object, array or boolean is
# quarantined there): sent as anything but text, they are kept in typed_fields.
IDENTIFIER_FIELDS = ("event_id", "conversation_id", "session_id", "user_id", "customer_id")


def column_name(field: str) -> str:
    """The raw.events column of a contract field (``timestamp`` is ``event_timestamp``)."""
    return "event_timestamp" if field == "timestamp" else field


RAW_ROW_COLUMNS = ("row_number", *(column_name(name) for name in FIELDS), "raw_record", "parse_error", "typed_fields")
STAGED_ROWS = "_landing_rows"


class Reader(Protocol):
    """Reads one landing file format into raw rows."""

    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, failure: Exception | None) -> None:
        """Leave ``_landing_rows`` (``RAW_ROW_COLUMNS``) for ``path``.

        ``failure`` is set when this reader's fast path already failed on
        the file in this load run: the reader then uses its fallback.
        """


ROW_SCHEMA = pa.schema(
    [("row_number", pa.int64())]
    + [(column_name(name), pa.string()) for name in FIELDS]
    + [("raw_record", pa.string()), ("parse_error", pa.string()), ("typed_fields", pa.string())]
)
BATCH_ROWS = 50_000


class RawRow(NamedTuple):
    """One raw row read in Python: contract fields (text) by contract name."""

    row_number: int
    values: dict[str, str | None]
    raw_record: str | None = None
    parse_error: str | None = None
    typed_fields: str | None = None

    def as_tuple(self) -> tuple:
        """The row in ``RAW_ROW_COLUMNS`` order."""
        return (
            self.row_number,
            *(self.values.get(name) for name in FIELDS),
            self.raw_record,
            self.parse_error,
            self.typed_fields,
        )


def guarded(rows: Iterator[RawRow]) -> Iterator[RawRow]:
    """The rows of a Python reader; whatever error stops it ends them with one more row.

    A field over any limit, a broken file, a bug in a reader: the rows read
    before it are kept, and the file gets a row numbered 0 whose
    ``parse_error`` names the error, which staging quarantines as
    ``unreadable_file``. The load run goes on with the other files.
    """
    try:
        yield from rows
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - any error reading the file is reported on the file
        yield RawRow(0, {}, parse_error=unreadable_file_text(error))


def row_batches(rows: Iterator[RawRow], batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Rows as Arrow batches of ``ROW_SCHEMA``, ``batch_rows`` at a time."""
    batch: list[tuple] = []
    for row in rows:
        batch.append(row.as_tuple())
        if len(batch) >= batch_rows:
            yield _arrow_batch(batch)
            batch = []
    if batch:
        yield _arrow_batch(batch)


def _arrow_batch(rows: list[tuple]) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True))
    return pa.record_batch(
        [pa.array(values, type_) for values, type_ in zip(columns, ROW_SCHEMA.types, strict=True)],
        schema=ROW_SCHEMA,
    )


def stage_python_rows(con: duckdb.DuckDBPyConnection, rows: Iterator[RawRow]) -> None:
    """Rows read in Python -> ``_landing_rows``: a stream the insert reads once, never all in memory."""
    stream = pa.RecordBatchReader.from_batches(ROW_SCHEMA, row_batches(guarded(rows)))
    con.register("_landing_python_rows", stream)
    con.execute(f"create or replace temp view {STAGED_ROWS} as select * from _landing_python_rows")


def unreadable_file_text(error: BaseException) -> str:
    """``parse_error`` of a file that could not be read (staging's reason ``unreadable_file``)."""
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"unreadable file: {first_line[:300]}"


def stage_unreadable_file(con: duckdb.DuckDBPyConnection, error: Exception) -> None:
    """A file no reader can open becomes one quarantined raw row, never a crash."""
    con.execute(
        f"""
        create or replace temp table {STAGED_ROWS} as
        select 0::bigint as row_number,
               {", ".join(f"null::varchar as {column_name(name)}" for name in FIELDS)},
               null::varchar as raw_record,
               ? as parse_error,
               null::varchar as typed_fields
        """,
        [unreadable_file_text(error)],
    )


def epoch_ms_number_as_text(expression: str) -> str:
    """SQL: a (possibly fractional) epoch-milliseconds number -> ISO text in UTC."""
    return (
        f"strftime(make_timestamp(cast(round({expression} * 1000) as bigint)), "
        "'%Y-%m-%dT%H:%M:%S.%fZ')"
    )
