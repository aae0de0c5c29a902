"""Landing folder -> ``raw.events``: every raw row kept, each file loaded once.

The loader does no validation beyond "can this line or row be read at all".
It copies each row's contract fields as text into ``raw.events`` together with
where it came from (file, row number, load run). What text cannot carry is
kept as JSON in ``typed_fields``: fields the loader has no column for (the
contract's v1.1 names such as ``id`` or ``metadata``, or any other name a user
may map in ``seeds/field_aliases.csv``) and identifiers sent as a number,
object, array or boolean, so that staging can tell ``"123"`` from ``123``
and ``{"id": 1}``. Typing, validation, alias
mapping and dedupe happen in dbt (``base_events_parsed`` -> ``stg_events`` /
``rejected_events``), so every rule lives in one place and a raw row can never
disappear between the two.

Readers, fastest that fits first:

* JSONL / JSONL.gz: DuckDB reads each line as one text column (no JSON parsing
  at read time, so one malformed line cannot reject its file), then extracts
  the fields with DuckDB's JSON functions. Falls back to Python line by line
  if DuckDB cannot read the file (e.g. invalid UTF-8).
* Parquet: DuckDB's reader; timestamp and properties columns of any supported
  type are turned into their text form.
* CSV: Python's csv module, because it reports the line each record came from
  and tolerates rows with the wrong number of fields.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from tqdm import tqdm

# OTLP/JSON trace exports (one per line) first: they also end in ".jsonl".
SUFFIXES = (".otlp.jsonl", ".otlp.jsonl.gz", ".jsonl", ".jsonl.gz", ".parquet", ".csv")

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

RAW_EVENTS_DDL = """
create schema if not exists raw;
create table if not exists raw.events (
    load_id integer not null,
    loaded_at timestamp not null,
    source_file varchar not null,
    file_hash varchar not null,
    row_number bigint not null,
    event_id varchar,
    conversation_id varchar,
    session_id varchar,
    user_id varchar,
    customer_id varchar,
    event_type varchar,
    event_timestamp varchar,
    channel varchar,
    properties varchar,
    raw_record varchar,
    parse_error varchar,
    typed_fields varchar
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

_JSON_PATHS = ", ".join(f"'$.{name}'" for name in FIELDS if name != "properties")
_IDENTIFIER_PATHS = ", ".join(f"'$.{name}'" for name in IDENTIFIER_FIELDS)
_FIELD_NAMES = ", ".join(f"'{name}'" for name in FIELDS)


@dataclass
class LoadReport:
    """What one loader run did."""

    load_id: int
    loaded_at: datetime
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    unreadable_rows: int = 0

    def summary(self) -> str:
        return (
            f"load {self.load_id}: {len(self.files_loaded)} new file(s), "
            f"{len(self.files_skipped)} already loaded, {self.rows_loaded} raw rows "
            f"({self.unreadable_rows} unreadable)"
        )


class LandingError(RuntimeError):
    """The landing folder cannot be used (missing, not a folder)."""


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RAW_EVENTS_DDL)


def discover_files(landing_dir: Path) -> list[Path]:
    """Every accepted file under the landing folder, in a stable order."""
    if not landing_dir.exists():
        raise LandingError(
            f"landing folder {landing_dir} does not exist: create it and drop event files in it, "
            "or point CONVO_LANDING_DIR / --landing at the right folder."
        )
    if not landing_dir.is_dir():
        raise LandingError(f"landing path {landing_dir} is not a folder.")
    # Dot-folders and dot-files are never loaded: writers build files in
    # `.tmp/` and rename them into place, rejects and spools live in dot-folders.
    files = [
        path
        for path in landing_dir.rglob("*")
        if path.is_file()
        and path.name.lower().endswith(SUFFIXES)
        and not any(part.startswith(".") for part in path.relative_to(landing_dir).parts)
    ]
    return sorted(files, key=lambda path: path.relative_to(landing_dir).as_posix())


def file_format(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix.lstrip(".")
    raise ValueError(f"unsupported file type: {path}")


def file_signature(path: Path) -> tuple[int, int]:
    """(size in bytes, modification time in ns): tells that a file changed without reading it."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_landing(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, progress: bool = True
) -> LoadReport:
    """Load every file not loaded before (by content hash) into ``raw.events``.

    A file whose size and modification time are those recorded in
    ``raw.landing_files_seen`` when it was last read is skipped without being
    opened; any other file is hashed, and loaded if its content is new.

    One load run is one transaction: its rows and its entries in
    ``raw.loaded_files`` commit together, so an interrupted run leaves nothing
    behind and the next run loads the same files again. (One transaction is
    also about twice as fast as one per file: DuckDB writes large
    transactions straight to the database file instead of through the WAL.)
    """
    landing_dir = Path(landing_dir)
    ensure_raw_tables(con)
    files = discover_files(landing_dir)
    # Files DuckDB's fast readers could not read, with the error: read again
    # by the fallback (Python for JSONL; one unreadable row for Parquet).
    fallbacks: dict[Path, Exception] = {}
    while True:
        try:
            return _load_files(con, landing_dir, files, fallbacks, progress)
        except _FastReaderFailed as failure:
            # A failed statement aborts the run's transaction: start over,
            # this time reading that file with its fallback.
            fallbacks[failure.path] = failure.error


class _FastReaderFailed(Exception):
    def __init__(self, path: Path, error: Exception) -> None:
        super().__init__(str(error))
        self.path = path
        self.error = error


def _load_files(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    files: list[Path],
    fallbacks: dict[Path, Exception],
    progress: bool,
) -> LoadReport:
    load_id = con.execute("select coalesce(max(load_id), 0) + 1 from raw.loaded_files").fetchone()[0]
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    report = LoadReport(load_id=load_id, loaded_at=loaded_at)
    known_hashes = {row[0] for row in con.execute("select file_hash from raw.loaded_files").fetchall()}
    seen = {
        source_file: (size, modified)
        for source_file, size, modified in con.execute(
            "select source_file, file_bytes, modified_ns from raw.landing_files_seen"
        ).fetchall()
    }

    con.execute("begin transaction")
    try:
        bar = tqdm(files, desc="loading landing files", unit="file", disable=not progress)
        for path in bar:
            relative = path.relative_to(landing_dir).as_posix()
            signature = file_signature(path)
            if seen.get(relative) == signature:
                report.files_skipped.append(relative)
                continue
            digest = content_hash(path)
            _record_seen(con, relative, signature, digest, loaded_at)
            if digest in known_hashes:
                report.files_skipped.append(relative)
                continue
            bar.set_postfix_str(relative[-40:])
            fmt = file_format(path)
            try:
                _stage_file(con, path, fmt, fallbacks.get(path))
                rows, unreadable = _record_file(con, load_id, loaded_at, relative, digest, fmt, path)
            except duckdb.Error as error:
                if fmt == "csv" or path in fallbacks:
                    raise
                raise _FastReaderFailed(path, error) from error
            _drop_staged_rows(con)
            known_hashes.add(digest)
            report.files_loaded.append(relative)
            report.rows_loaded += rows
            report.unreadable_rows += unreadable
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return report


def _record_seen(
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


def _record_file(
    con: duckdb.DuckDBPyConnection,
    load_id: int,
    loaded_at: datetime,
    relative: str,
    digest: str,
    fmt: str,
    path: Path,
) -> tuple[int, int]:
    """Copy ``_landing_rows`` into raw.events and note the file in raw.loaded_files."""
    (rows,) = con.execute(
        """
        insert into raw.events (
            load_id, loaded_at, source_file, file_hash, row_number, event_id, conversation_id,
            session_id, user_id, customer_id, event_type, event_timestamp, channel, properties,
            raw_record, parse_error, typed_fields
        )
        select ?, ?, ?, ?, row_number, event_id, conversation_id, session_id, user_id,
               customer_id, event_type, event_timestamp, channel, properties,
               raw_record, parse_error, typed_fields
        from _landing_rows
        """,
        [load_id, loaded_at, relative, digest],
    ).fetchone()
    # Counted in what was written: _landing_rows may be a view (read once).
    (unreadable,) = con.execute(
        "select count(*) from raw.events where load_id = ? and source_file = ? and parse_error is not null",
        [load_id, relative],
    ).fetchone()
    con.execute(
        "insert into raw.loaded_files values (?, ?, ?, ?, ?, ?, ?)",
        [load_id, loaded_at, relative, digest, fmt, path.stat().st_size, rows],
    )
    return rows, unreadable


def _drop_staged_rows(con: duckdb.DuckDBPyConnection) -> None:
    for name in ("_landing_rows", "_landing_lines"):
        kind = con.execute(
            "select table_type from information_schema.tables where table_name = ?", [name]
        ).fetchone()
        if kind:
            con.execute(f"drop {'view' if kind[0] == 'VIEW' else 'table'} {name}")


def _stage_file(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: str, fast_reader_error: Exception | None
) -> None:
    """Read one file into ``_landing_rows`` (contract fields as text).

    ``fast_reader_error`` is set when DuckDB's reader already failed on this
    file: JSONL is then read line by line in Python, and a Parquet file
    becomes one unreadable row.
    """
    if fmt in ("otlp.jsonl", "otlp.jsonl.gz"):
        _stage_otlp(con, path)
    elif fmt in ("jsonl", "jsonl.gz"):
        if fast_reader_error is None:
            _stage_jsonl_duckdb(con, path)
        else:
            _stage_jsonl_python(con, path)
    elif fmt == "parquet":
        if fast_reader_error is None:
            _stage_parquet(con, path)
        else:
            _stage_unreadable_file(con, path, fast_reader_error)
    else:
        _stage_csv(con, path)


def _stage_jsonl_duckdb(con: duckdb.DuckDBPyConnection, path: Path) -> None:
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
    _lines_to_rows(con)


def _stage_jsonl_python(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        lines = [raw.decode("utf-8", errors="replace").rstrip("\r\n") for raw in handle]
    con.execute("create or replace temp table _landing_lines (line varchar)")
    table = pa.table({"line": pa.array(lines, pa.string())})
    con.register("_landing_lines_arrow", table)
    con.execute("insert into _landing_lines select line from _landing_lines_arrow")
    con.unregister("_landing_lines_arrow")
    _lines_to_rows(con)


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
        create or replace temp view _landing_rows as
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
                    then {_epoch_ms_number_as_text(f"cast(fragments[{position['timestamp']}] as double)")}
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


def _epoch_ms_number_as_text(expression: str) -> str:
    """SQL: a (possibly fractional) epoch-milliseconds number -> ISO text in UTC."""
    return (
        f"strftime(make_timestamp(cast(round({expression} * 1000) as bigint)), "
        "'%Y-%m-%dT%H:%M:%S.%fZ')"
    )


def _parquet_text(column: str, duck_type: str) -> str:
    """SQL turning a Parquet column of any supported type into the contract's text form."""
    quoted = f'"{column}"'
    upper = duck_type.upper()
    if column == "timestamp":
        if upper.startswith("TIMESTAMP WITH TIME ZONE"):
            return f"strftime(timezone('UTC', {quoted}), '%Y-%m-%dT%H:%M:%S.%fZ')"
        if upper.startswith("TIMESTAMP"):
            return f"strftime({quoted}, '%Y-%m-%dT%H:%M:%S.%f')"
        if upper in ("FLOAT", "DOUBLE") or upper.startswith("DECIMAL"):
            return _epoch_ms_number_as_text(f"{quoted}::double")
    if column == "properties" and (upper.startswith(("STRUCT", "MAP")) or upper == "JSON"):
        return f"to_json({quoted})::varchar"
    return f"{quoted}::varchar"


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    schema = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
    types = {name: duck_type for name, duck_type, *_ in schema}
    selects = [
        f"{_parquet_text(name, types[name]) if name in types else 'null'} as "
        f"{'event_timestamp' if name == 'timestamp' else name}"
        for name in FIELDS
    ]
    # Columns text cannot carry (no column of their own, or an identifier of
    # another type than text) are kept as JSON with their types.
    typed = [
        name
        for name, duck_type in types.items()
        if name not in FIELDS or (name in IDENTIFIER_FIELDS and duck_type.upper() != "VARCHAR")
    ]
    typed_fields = (
        "to_json(struct_pack({}))::varchar".format(
            ", ".join(f"{_quote_identifier(name)} := {_quote_identifier(name)}" for name in typed)
        )
        if typed
        else "null::varchar"
    )
    # A view, not a copy: the insert reads the file once. Views take no
    # parameters, so the path is inlined as a quoted literal.
    literal = "'" + str(path).replace("'", "''") + "'"
    con.execute(
        f"""
        create or replace temp view _landing_rows as
        select
            file_row_number + 1 as row_number,
            {", ".join(selects)},
            null::varchar as raw_record,
            null::varchar as parse_error,
            {typed_fields} as typed_fields
        from read_parquet({literal}, file_row_number = true)
        """
    )


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stage_unreadable_file(con: duckdb.DuckDBPyConnection, path: Path, error: Exception) -> None:
    """A file no reader can open becomes one quarantined raw row, never a crash."""
    con.execute(
        f"""
        create or replace temp table _landing_rows as
        select 0::bigint as row_number,
               {", ".join(f"null::varchar as {'event_timestamp' if n == 'timestamp' else n}" for n in FIELDS)},
               null::varchar as raw_record,
               ? as parse_error,
               null::varchar as typed_fields
        """,
        [f"unreadable file: {str(error).splitlines()[0][:300]}"],
    )


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    _stage_python_rows(con, read_csv_columns(path))


def read_csv_columns(path: Path) -> dict[str, list]:
    """A CSV file's raw columns (text) by name, for any engine's loader.

    Python's csv module, because it reports the line each record came from
    and tolerates rows with the wrong number of fields (kept whole, with the
    reason, for quarantine).
    """
    columns: dict[str, list] = {
        name: [] for name in ("row_number", *FIELDS, "raw_record", "parse_error", "typed_fields")
    }

    def add(line_number: int, values: dict[str, str | None], raw: str | None, error: str | None) -> None:
        columns["row_number"].append(line_number)
        for name in FIELDS:
            columns[name].append(values.get(name))
        columns["raw_record"].append(raw)
        columns["parse_error"].append(error)
        # CSV values are all text: only columns without a column of their own
        # (an alias such as `id`) need keeping.
        extra = {name: value for name, value in values.items() if name not in FIELDS and value is not None}
        columns["typed_fields"].append(json.dumps(extra) if extra else None)

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is not None:
            names = [name.strip() for name in header]
            for record in reader:
                if not record or all(not value.strip() for value in record):
                    continue  # blank line: not a row
                if len(record) != len(names):
                    raw = io.StringIO()
                    csv.writer(raw).writerow(record)
                    add(
                        reader.line_num,
                        {},
                        raw.getvalue().rstrip("\r\n"),
                        f"unreadable row: expected {len(names)} fields, found {len(record)}",
                    )
                    continue
                values = {name: (value if value != "" else None) for name, value in zip(names, record)}
                add(reader.line_num, values, None, None)
    return columns


def _stage_otlp(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    _stage_python_rows(con, read_otlp_columns(path))


def read_otlp_columns(path: Path) -> dict[str, list]:
    """OTLP/JSON trace exports, one per line: GenAI spans become contract events.

    Returns the raw columns (text) by name, for any engine's loader. The
    mapping is ``convo_warehouse.lib.otel_genai``; a row number is the
    event's position among the file's mapped events (unreadable lines get one
    row each, with the line's text).
    """
    from convo_warehouse.lib.event_validation import field_text
    from convo_warehouse.lib.otel_genai import map_export_request

    columns: dict[str, list] = {
        name: [] for name in ("row_number", *FIELDS, "raw_record", "parse_error", "typed_fields")
    }

    def add(values: dict, raw: str | None, error: str | None) -> None:
        columns["row_number"].append(len(columns["row_number"]) + 1)
        for name in FIELDS:
            value = values.get(name)
            columns[name].append(json.dumps(value) if name == "properties" and value is not None
                                 else field_text(value))
        columns["raw_record"].append(raw)
        columns["parse_error"].append(error)
        # mapped events carry only contract fields, identifiers as text
        columns["typed_fields"].append(None)

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line.strip():
                continue
            try:
                mapped = map_export_request(json.loads(line))
            except ValueError as error:
                add({}, line, f"unreadable line {line_number}: {str(error)[:200]}")
                continue
            for event in mapped.events:
                add(event, None, None)
    return columns


def _stage_python_rows(con: duckdb.DuckDBPyConnection, columns: dict[str, list]) -> None:
    """Rows read in Python (column lists of text) -> ``_landing_rows``."""
    table = pa.table(
        {
            "row_number": pa.array(columns["row_number"], pa.int64()),
            **{
                ("event_timestamp" if name == "timestamp" else name): pa.array(columns[name], pa.string())
                for name in FIELDS
            },
            "raw_record": pa.array(columns["raw_record"], pa.string()),
            "parse_error": pa.array(columns["parse_error"], pa.string()),
            "typed_fields": pa.array(columns["typed_fields"], pa.string()),
        }
    )
    con.register("_landing_csv_arrow", table)
    con.execute("create or replace temp table _landing_rows as select * from _landing_csv_arrow")
    con.unregister("_landing_csv_arrow")
