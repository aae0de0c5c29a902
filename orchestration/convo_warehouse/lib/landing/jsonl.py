"""JSONL and JSONL.gz: one JSON object per line.

DuckDB reads the file as lines (its CSV reader with one text column and no
quoting: no JSON parsing yet, so one malformed line cannot reject the file,
and the rows keep their line numbers); one SQL transform, ``rows_from_lines``,
then turns each line into the row's columns with DuckDB's JSON functions,
keeping the line's text only when it cannot be read.

When DuckDB cannot read the file as lines (invalid UTF-8, a lone carriage
return, a line over 64 MiB, a truncated gzip stream), Python streams it line
by line, a batch at a time (a file of any size, plain or gzip, is never held
in memory whole), into the same transform.

(DuckDB's ``read_json`` would parse each line only once, but it reports neither
line numbers nor the text of a line it cannot read, drops the keys it has
no column for unless asked for a MAP, whose copies cost more than the
parses it saves, and after a truncated line it also rejects the next,
valid, line: docs/staging.md. Here each of the four JSON functions parses
the line on its own; issue 26.)
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from convo_warehouse.lib.landing.files import duckdb_path
from convo_warehouse.lib.landing.rows import (
    FIELDS,
    IDENTIFIER_FIELDS,
    STAGED_ROWS,
    epoch_ms_number_as_text,
    unreadable_file_text,
)
from convo_warehouse.lib.warehouse import sql_literal

# Lines per batch of the Python fallback: about 15 MB of typical events.
BATCH_LINES = 50_000
# The longest line read (DuckDB's readers stop at their own limits otherwise).
MAX_LINE_BYTES = 64 * 1024 * 1024
# DuckDB's read buffer: it must hold the longest line; its default, 16 times
# that (1 GiB), does not fit under the loader's 1 GB memory cap.
READ_BUFFER_BYTES = 2 * MAX_LINE_BYTES

# A line of these characters only is blank: no row (but it counts in the line
# numbers). Python's whitespace (str.isspace), for both readers.
WHITESPACE = "".join(chr(code) for code in range(0x3001) if chr(code).isspace())

_LINE_SCHEMA = pa.schema([("row_number", pa.int64()), ("line", pa.string()), ("read_error", pa.string())])


class JsonlReader:
    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, failure: Exception | None) -> None:
        if failure is None:
            _stage_lines_duckdb(con, path)
        else:
            _stage_python_lines(con, path)


# --------------------------------------------------------------------------- DuckDB reads the lines


def _stage_lines_duckdb(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # One text column per line (\x1f never appears unescaped in valid JSON).
    # Insertion order is kept, so rowids count lines (inside a transaction
    # they start at a large offset, hence the minimum); blank lines arrive
    # as null or whitespace and are dropped after numbering.
    con.execute(
        f"""
        create or replace temp table _landing_lines as
        select line
        from read_csv(
            {sql_literal(duckdb_path(path))}, columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x1f',
            quote = '', escape = '', auto_detect = false, new_line = '\\n', max_line_size = {MAX_LINE_BYTES},
            buffer_size = {READ_BUFFER_BYTES}
        )
        """
    )
    con.execute(
        f"""
        create or replace temp view _landing_numbered_lines as
        select
            _landing_lines.rowid - first_line.first_rowid + 1 as row_number,
            _landing_lines.line,
            null::varchar as read_error
        from _landing_lines
        cross join (select min(rowid) as first_rowid from _landing_lines) as first_line
        -- blank lines are no rows; a line starting with printable ASCII is
        -- not blank, so trim (a copy of the line) runs only on the others
        where _landing_lines.line is not null
            and (
                ascii(_landing_lines.line) between 33 and 126
                or trim(_landing_lines.line, {sql_literal(WHITESPACE)}) <> ''
            )
        """
    )
    stage_lines(con, "_landing_numbered_lines")


# --------------------------------------------------------------------------- the fallback


def python_lines(path: Path, batch_lines: int | None = None) -> Iterator[pa.RecordBatch]:
    """The file's non-blank lines as batches of (row_number, line, read_error), streamed.

    Lines are numbered as in the file (blank lines count, but are no rows);
    bytes that are not UTF-8 become U+FFFD. Whatever error stops the reading
    (a truncated gzip stream, say) ends it with one row numbered 0 holding
    the error: the lines read before it are kept.
    """
    batch_lines = batch_lines or BATCH_LINES
    numbers: list[int] = []
    lines: list[str] = []
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if _is_blank(text):
                    continue
                numbers.append(number)
                lines.append(text)
                if len(lines) >= batch_lines:
                    yield _line_batch(numbers, lines)
                    numbers, lines = [], []
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever stops the reading is reported on the file
        if lines:
            yield _line_batch(numbers, lines)
        yield pa.record_batch(
            [pa.array([0], pa.int64()), pa.array([None], pa.string()), pa.array([unreadable_file_text(error)])],
            schema=_LINE_SCHEMA,
        )
        return
    if lines:
        yield _line_batch(numbers, lines)


def _is_blank(line: str) -> bool:
    """A line of whitespace (Unicode's too) is no row."""
    return not line.strip(WHITESPACE)


def _line_batch(numbers: list[int], lines: list[str]) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(numbers, pa.int64()), pa.array(lines, pa.string()), pa.nulls(len(lines), pa.string())],
        schema=_LINE_SCHEMA,
    )


def _stage_python_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    con.register("_landing_line_stream", pa.RecordBatchReader.from_batches(_LINE_SCHEMA, python_lines(path)))
    stage_lines(con, "_landing_line_stream")


def stage_lines(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """``_landing_rows`` from a relation of (row_number, line, read_error), read once by the insert."""
    con.execute(f"create or replace temp view {STAGED_ROWS} as {rows_from_lines(relation)}")


def rows_from_lines(relation: str) -> str:
    """SQL (a query) of the raw rows of (row_number, line, read_error) rows: the
    same columns as the JSON reader's path, from DuckDB's JSON functions on
    each line's text."""
    structure = "{" + ", ".join(f'"{name}": "JSON"' for name in FIELDS) + "}"
    return f"""
        with lines as (
            select
                row_number,
                line,
                read_error,
                -- a case, not an and: DuckDB may evaluate the terms of an and in any order
                coalesce(case when read_error is null and json_valid(line) then json_type(line) = 'OBJECT' end, false)
                    as is_object
            from {relation}
        ),
        parsed as (
            select
                row_number,
                line,
                read_error,
                is_object,
                case when is_object then json_transform(line, '{structure}') end as fields
            from lines
        )
        select
            row_number,
            {_fields_from_fragments("fields")},
            case when not is_object and read_error is null then line end as raw_record,
            case
                when read_error is not null then read_error
                when not is_object then {_unreadable_line_text("line")}
            end as parse_error,
            case when is_object then {_typed_fields_from_line("line", "fields")} end as typed_fields
        from parsed
    """


# --------------------------------------------------------------------------- the columns, once


def _fields_from_fragments(fields: str) -> str:
    """SQL of the contract fields as text, from the record ``fields`` of each field's JSON fragment."""

    def of(name: str) -> str:
        return f'{fields}."{name}"'

    selects = []
    for name in FIELDS:
        if name == "timestamp":
            # a JSON number with a fraction or an exponent is still epoch
            # milliseconds: written as an ISO time keeping microseconds
            selects.append(
                f"case when json_type({of(name)}) = 'DOUBLE' "
                f"then {epoch_ms_number_as_text(f'try_cast({of(name)} as double)')} "
                f"else json_extract_string({of(name)}, '$') end as event_timestamp"
            )
        elif name == "properties":
            selects.append(f"nullif(cast({of(name)} as varchar), 'null') as properties")
        else:
            selects.append(f"json_extract_string({of(name)}, '$') as {name}")
    return ",\n            ".join(selects)


def _unreadable_line_text(line: str) -> str:
    return (
        f"case when json_valid({line}) "
        f"then 'unreadable line: JSON ' || lower(json_type({line})) || ', not an object' "
        "else 'unreadable line: not valid JSON' end"
    )


def _typed_fields_from_line(line: str, fields: str) -> str:
    """The JSON object of the fields text cannot carry: the line without its
    contract fields, but for identifiers sent as anything but a string
    (a number, object, array or boolean: staging reads their kind here).

    json_merge_patch parses the line and the patch and writes the line
    again. A line of contract fields only, each once, with its identifiers
    as text (as many keys as fields sent: most lines) has nothing left and
    skips it; a patch that differs by row is parsed for each row, so the
    usual one (every identifier as text) is a constant."""
    as_text = {name: f"""coalesce(left({fields}."{name}", 1), 'n') in ('"', 'n')""" for name in IDENTIFIER_FIELDS}
    removed = [f'"{name}":null' for name in FIELDS if name not in IDENTIFIER_FIELDS]
    patch = "'{" + ",".join(removed) + "' || " + " || ".join(
        f"""case when {as_text[name]} then ',"{name}":null' else '' end""" for name in IDENTIFIER_FIELDS
    ) + " || '}'"
    every_field = "'{" + ",".join(f'"{name}":null' for name in FIELDS) + "}'"
    identifiers_as_text = " and ".join(as_text.values())
    fields_sent = " + ".join(f'cast({fields}."{name}" is not null as integer)' for name in FIELDS)
    return f"""case
                when {identifiers_as_text} and len(json_keys({line})) = {fields_sent} then null
                when {identifiers_as_text} then nullif(cast(json_merge_patch({line}, {every_field}) as varchar), '{{}}')
                else nullif(cast(json_merge_patch({line}, {patch}) as varchar), '{{}}')
            end"""


READER = JsonlReader()
