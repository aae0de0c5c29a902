"""JSONL and JSONL.gz: one JSON object per line.

DuckDB reads each line as one text column (no JSON parsing at read time, so
one malformed line cannot reject its file), then extracts the fields with
DuckDB's JSON functions. When DuckDB cannot read the file (e.g. invalid
UTF-8), Python streams it line by line instead, a batch at a time, so a
file of any size (plain or gzip) is never held in memory whole.
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

_IDENTIFIER_PATHS = ", ".join(f"'$.{name}'" for name in IDENTIFIER_FIELDS)
_FIELD_NAMES = ", ".join(f"'{name}'" for name in FIELDS)
# Lines per batch of the Python fallback: about 15 MB of typical events.
BATCH_LINES = 50_000
_LINE_SCHEMA = pa.schema([("row_number", pa.int64()), ("line", pa.string()), ("read_error", pa.string())])


class JsonlReader:
    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, failure: Exception | None) -> None:
        if failure is None:
            _stage_lines_duckdb(con, path)
        else:
            _stage_lines_python(con, path)
        _lines_to_rows(con)


def _stage_lines_duckdb(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    # One text column per line; \x1f never appears unescaped in valid JSON.
    # Insertion order is kept, so rowids count lines (inside a transaction
    # they start at a large offset, hence the minimum); blank lines
    # arrive as NULL/whitespace and are dropped after numbering.
    con.execute(
        """
        create or replace temp table _landing_lines as
        select line
        from read_csv(
            ?, columns = {'line': 'VARCHAR'}, header = false, delim = '\x1f', quote = '',
            escape = '', auto_detect = false, new_line = '\\n', max_line_size = 67108864
        )
        """,
        [duckdb_path(path)],
    )
    con.execute(
        """
        create or replace temp view _landing_numbered as
        select
            _landing_lines.rowid - first_line.first_rowid + 1 as row_number,
            _landing_lines.line,
            null::varchar as read_error
        from _landing_lines
        cross join (select min(rowid) as first_rowid from _landing_lines) as first_line
        -- blank lines are no rows; a line starting with printable ASCII
        -- is not blank, so trim (a copy of every line, 4x the cost of
        -- the check) runs only on the others
        where _landing_lines.line is not null
            and (ascii(_landing_lines.line) between 33 and 126 or trim(_landing_lines.line) <> '')
        """
    )


def python_lines(path: Path, batch_lines: int | None = None) -> Iterator[pa.RecordBatch]:
    """The file's non-blank lines as batches of (row_number, line, read_error), streamed.

    Lines are numbered as in the file (blank lines count, but are no rows);
    bytes that are not UTF-8 become U+FFFD. An error reading the file (a
    truncated gzip stream, say) ends it with one row numbered 0 holding the
    error: the lines read before it are kept.
    """
    batch_lines = batch_lines or BATCH_LINES
    numbers: list[int] = []
    lines: list[str] = []
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not text.strip():
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


def _line_batch(numbers: list[int], lines: list[str]) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(numbers, pa.int64()), pa.array(lines, pa.string()), pa.nulls(len(lines), pa.string())],
        schema=_LINE_SCHEMA,
    )


def _stage_lines_python(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    stream = pa.RecordBatchReader.from_batches(_LINE_SCHEMA, python_lines(path))
    con.register("_landing_line_stream", stream)
    # read once, by the insert into raw.events: the file streams through
    con.execute(
        "create or replace temp view _landing_numbered as "
        "select row_number, line, read_error from _landing_line_stream"
    )


def _lines_to_rows(con: duckdb.DuckDBPyConnection) -> None:
    """``_landing_rows``: a view over ``_landing_numbered``, read once by the insert.

    Each readable line is parsed by one ``json_extract`` of every contract
    field (the values come back as small JSON fragments, cheap to unquote);
    the line's text is kept only when it cannot be read. A view, not a copy,
    so the rows are written once, into ``raw.events``.
    """
    paths = ", ".join(f"'$.{name}'" for name in FIELDS)
    position = {name: index + 1 for index, name in enumerate(FIELDS)}
    con.execute(
        f"""
        create or replace temp view {STAGED_ROWS} as
        with extracted as (
            select
                row_number,
                line,
                read_error,
                case when json_valid(line) then json_extract(line, [{paths}]) end as fragments
            from _landing_numbered
        ),
        readable as (
            select
                row_number,
                line,
                fragments,
                case
                    when read_error is not null then read_error
                    when fragments is null then 'unreadable line: not valid JSON'
                    -- no contract key at all: an object without them is read
                    -- (and quarantined by staging), anything else is not
                    when list_bool_and(list_transform(fragments, fragment -> fragment is null))
                        and json_type(line) <> 'OBJECT'
                        then 'unreadable line: JSON ' || lower(json_type(line)) || ', not an object'
                end as parse_error
            from extracted
        )
        select
            row_number,
            {", ".join(f"fragments[{position[name]}] ->> '$' as {name}" for name in FIELDS if name not in ("timestamp", "properties"))},
            case
                -- a JSON number with a fraction or exponent is still epoch
                -- milliseconds: write it as an ISO time keeping microseconds
                when json_type(fragments[{position["timestamp"]}]) = 'DOUBLE'
                    then {epoch_ms_number_as_text(f"cast(fragments[{position['timestamp']}] as double)")}
                else fragments[{position["timestamp"]}] ->> '$'
            end as event_timestamp,
            nullif(cast(fragments[{position["properties"]}] as varchar), 'null') as properties,
            case when parse_error is not null then line end as raw_record,
            parse_error,
            -- the whole record when it has a field without a column, or an
            -- identifier that is not a JSON string
            case
                when parse_error is null and (
                    len(list_filter(json_keys(line), name -> not list_contains([{_FIELD_NAMES}], name))) > 0
                    or len(list_filter(
                        json_type(line, [{_IDENTIFIER_PATHS}]), kind -> kind not in ('VARCHAR', 'NULL')
                    )) > 0
                ) then cast(cast(line as json) as varchar)
            end as typed_fields
        from readable
        """
    )


READER = JsonlReader()
