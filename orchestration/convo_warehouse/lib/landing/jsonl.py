"""JSONL and JSONL.gz: one JSON object per line.

DuckDB reads each line as one text column (no JSON parsing at read time, so
one malformed line cannot reject its file), then extracts the fields with
DuckDB's JSON functions. Python reads the file line by line when DuckDB
cannot (e.g. invalid UTF-8).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pyarrow as pa

from convo_warehouse.lib.landing.rows import (
    FIELDS,
    IDENTIFIER_FIELDS,
    STAGED_ROWS,
    epoch_ms_number_as_text,
)

_IDENTIFIER_PATHS = ", ".join(f"'$.{name}'" for name in IDENTIFIER_FIELDS)
_FIELD_NAMES = ", ".join(f"'{name}'" for name in FIELDS)


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
        [str(path)],
    )


def _stage_lines_python(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        lines = [raw.decode("utf-8", errors="replace").rstrip("\r\n") for raw in handle]
    con.execute("create or replace temp table _landing_lines (line varchar)")
    table = pa.table({"line": pa.array(lines, pa.string())})
    con.register("_landing_lines_arrow", table)
    con.execute("insert into _landing_lines select line from _landing_lines_arrow")
    con.unregister("_landing_lines_arrow")


def _lines_to_rows(con: duckdb.DuckDBPyConnection) -> None:
    """``_landing_rows``: a view over ``_landing_lines``, read once by the insert.

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
        with numbered as (
            select
                _landing_lines.rowid - first_line.first_rowid + 1 as row_number,
                _landing_lines.line
            from _landing_lines
            cross join (select min(rowid) as first_rowid from _landing_lines) as first_line
        ),
        extracted as (
            select
                row_number,
                line,
                case when json_valid(line) then json_extract(line, [{paths}]) end as fragments
            from numbered
            -- blank lines are no rows; a line starting with printable ASCII
            -- is not blank, so trim (a copy of every line, 4x the cost of
            -- the check) runs only on the others
            where line is not null and (ascii(line) between 33 and 126 or trim(line) <> '')
        ),
        readable as (
            select
                row_number,
                line,
                fragments,
                case
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
