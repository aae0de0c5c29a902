"""Landing folder -> Spark tables ``raw.events`` / ``raw.loaded_files``.

The Spark path of the loader: the same files, the same rules and the same
columns as :mod:`convo_warehouse.lib.landing` (the DuckDB path), read by Spark
itself so the data never passes through one machine's memory:

* file discovery, content hashing, "a file is loaded once" and "a file whose
  size and mtime are those recorded when it was last read is not read again"
  (``raw.landing_files_seen``) come from the DuckDB loader's functions (one
  place);
* every format through a reader of ``READERS``, keyed as the DuckDB
  loader's (``SparkReader``: a file -> a DataFrame of ``RAW_ROW_COLUMNS``);
* JSONL / JSONL.gz: Spark reads lines, numbers them (physical line number,
  blank lines skipped but counted), and extracts the contract fields as text;
  a line that is not valid JSON, or not an object, is kept with the same
  ``parse_error`` text as the DuckDB loader's (``make test-spark`` compares
  both loaders' rows on the edge-case lines of
  ``tests/fixtures/landing/edge_lines.jsonl``);
  the whole line is kept in ``typed_fields`` so staging reads every field's
  JSON type and the v1.1 field names from it (the DuckDB path keeps it only
  when needed: staging gives the same verdicts either way);
* Parquet: Spark's reader, row number = 1-based position in the file;
* CSV and OTLP JSON-lines: the DuckDB loader's Python readers (Python's csv
  module for line numbers and ragged rows; the GenAI span mapping), then one
  Spark DataFrame per file.

Typing, validation, aliasing and dedupe stay in dbt, as on DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from convo_warehouse.lib import landing
from convo_warehouse.lib.landing import csv_file, jsonl, otlp
from convo_warehouse.lib.landing.rows import FIELDS, IDENTIFIER_FIELDS, RAW_ROW_COLUMNS, RawRow, guarded

RAW_EVENT_COLUMNS = (
    ("load_id", "int"),
    ("loaded_at", "timestamp"),
    ("source_file", "string"),
    ("file_hash", "string"),
    ("row_number", "bigint"),
    ("event_id", "string"),
    ("conversation_id", "string"),
    ("session_id", "string"),
    ("user_id", "string"),
    ("customer_id", "string"),
    ("event_type", "string"),
    ("event_timestamp", "string"),
    ("channel", "string"),
    ("properties", "string"),
    ("raw_record", "string"),
    ("parse_error", "string"),
    ("typed_fields", "string"),
)
LOADED_FILE_COLUMNS = (
    ("load_id", "int"),
    ("loaded_at", "timestamp"),
    ("source_file", "string"),
    ("file_hash", "string"),
    ("file_format", "string"),
    ("file_bytes", "bigint"),
    ("raw_rows", "bigint"),
)
SEEN_FILE_COLUMNS = (
    ("source_file", "string"),
    ("file_bytes", "bigint"),
    ("modified_ns", "bigint"),
    ("file_hash", "string"),
    ("seen_at", "timestamp"),
)
_ISO_MICROS = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"


@dataclass
class SparkLoadReport:
    """What one Spark loader run did."""

    load_id: int
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    rows_loaded: int = 0

    def summary(self) -> str:
        return (
            f"spark load {self.load_id}: {len(self.files_loaded)} new file(s), "
            f"{len(self.files_skipped)} already loaded, {self.rows_loaded} raw rows"
        )


def ensure_raw_tables(spark) -> None:
    spark.sql("create database if not exists raw")
    tables = (("events", RAW_EVENT_COLUMNS), ("loaded_files", LOADED_FILE_COLUMNS),
              ("landing_files_seen", SEEN_FILE_COLUMNS))
    for table, columns in tables:
        ddl = ", ".join(f"{name} {kind}" for name, kind in columns)
        spark.sql(f"create table if not exists raw.{table} ({ddl}) using parquet")


def load_landing_spark(spark, landing_dir: Path, progress: bool = True) -> SparkLoadReport:
    """Load every landing file not loaded before (by content hash) into Spark's raw tables.

    As the DuckDB loader: a file whose size and mtime are those recorded in
    ``raw.landing_files_seen`` when it was last read is skipped unread; any
    other file is hashed, and loaded if its content is new. The new files'
    rows go into ``raw.events`` in one insert, their entries into
    ``raw.loaded_files`` in another. What was read is recorded last, in one
    statement: a run that stops before it only hashes those files again.
    """
    landing_dir = Path(landing_dir)
    ensure_raw_tables(spark)
    files = landing.discover_files(landing_dir)
    known = {row.file_hash for row in spark.sql("select file_hash from raw.loaded_files").collect()}
    seen = _seen_signatures(spark)
    load_id = spark.sql("select coalesce(max(load_id), 0) + 1 as next from raw.loaded_files").first().next
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    at = f"timestamp'{loaded_at.isoformat(sep=' ')}'"
    report = SparkLoadReport(load_id=load_id)
    read: list[str] = []
    new_files: list[tuple[str, str, str, int]] = []  # relative path, hash, format, bytes
    frames = []
    for number, path in enumerate(files, start=1):
        relative = path.relative_to(landing_dir).as_posix()
        signature = landing.file_signature(path)
        if seen.get(relative) == signature:
            report.files_skipped.append(relative)
            continue
        digest = landing.content_hash(path)
        read.append(f"({_literal(relative)}, {signature[0]}, {signature[1]}, '{digest}', {at})")
        if digest in known:
            report.files_skipped.append(relative)
            continue
        fmt = landing.file_format(path)
        if progress:
            print(f"spark load: [{number}/{len(files)}] {relative}", flush=True)
        frames.append(_with_origin(READERS[fmt].frame(spark, path, f"_landing_{len(frames)}"), relative, digest))
        new_files.append((relative, digest, fmt, signature[0]))
        known.add(digest)
    if frames:
        # every new file in one insert (a statement per file costs Spark's fixed planning each time)
        rows = frames[0]
        for frame in frames[1:]:
            rows = rows.unionByName(frame)
        rows.createOrReplaceTempView("_landing_rows")
        columns = ", ".join(name for name, _ in RAW_EVENT_COLUMNS[2:])
        spark.sql(f"insert into raw.events select {load_id}, {at}, {columns} from _landing_rows")
        counts = {
            row.source_file: row.n
            for row in spark.sql(
                f"select source_file, count(*) as n from raw.events where load_id = {load_id} group by source_file"
            ).collect()
        }
        values = ", ".join(
            f"({load_id}, {at}, {_literal(relative)}, '{digest}', '{fmt}', {size}, {counts.get(relative, 0)})"
            for relative, digest, fmt, size in new_files
        )
        spark.sql(f"insert into raw.loaded_files values {values}")
        report.files_loaded = [relative for relative, *_ in new_files]
        report.rows_loaded = sum(counts.values())
    if read:
        spark.sql(f"insert into raw.landing_files_seen values {', '.join(read)}")
    return report


def _with_origin(frame, relative: str, digest: str):
    """A file's raw rows with the file they came from, as ``raw.events``' columns after the load's."""
    from pyspark.sql import functions as F

    return frame.select(
        F.lit(relative).alias("source_file"), F.lit(digest).alias("file_hash"), *RAW_ROW_COLUMNS
    )


def _seen_signatures(spark) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every landing file when it was last read. The table only grows (Spark
    cannot overwrite a table it reads): a file read again has a newer row, and the newest wins."""
    rows = spark.sql(
        "select source_file, file_bytes, modified_ns from raw.landing_files_seen order by seen_at"
    ).collect()
    return {row.source_file: (row.file_bytes, row.modified_ns) for row in rows}


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SparkReader(Protocol):
    """Reads one landing file format on Spark: the Spark side of the loader's
    :class:`convo_warehouse.lib.landing.rows.Reader`, keyed by the same
    formats (``READERS``), giving the same ``RAW_ROW_COLUMNS``."""

    def frame(self, spark, path: Path, view: str = "_landing_file"):
        """A DataFrame of ``path``'s raw rows (``RAW_ROW_COLUMNS``); ``view``: a temporary view name
        of its own, should the reader need one (one load run reads many files before inserting)."""


class PythonRowsReader:
    """A format the DuckDB loader reads in Python (CSV, OTLP): its very rows."""

    def __init__(self, reader: csv_file.CsvReader | otlp.OtlpReader) -> None:
        self.reader = reader

    def frame(self, spark, path: Path, view: str = "_landing_file"):
        return _python_rows(spark, self.reader.rows(path))


class JsonlReader:
    def frame(self, spark, path: Path, view: str = "_landing_file"):
        return _read_jsonl(spark, path, view)


class ParquetReader:
    def frame(self, spark, path: Path, view: str = "_landing_file"):
        return _read_parquet(spark, path)


READERS: dict[str, SparkReader] = {
    "otlp.jsonl": PythonRowsReader(otlp.READER),
    "otlp.jsonl.gz": PythonRowsReader(otlp.READER),
    "jsonl": JsonlReader(),
    "jsonl.gz": JsonlReader(),
    "parquet": ParquetReader(),
    "csv": PythonRowsReader(csv_file.READER),
}


def _read_jsonl(spark, path: Path, view: str):
    # DuckDB's JSON reader takes an object with a repeated key (the last wins)
    spark.conf.set("spark.sql.variant.allowDuplicateKeys", "true")
    # blank lines (Unicode whitespace, as the DuckDB loader's) are no rows but count in the numbering
    _numbered_lines(spark, path).createOrReplaceTempView(view)
    text_fields = [name for name in FIELDS if name not in ("timestamp", "properties")]
    extracted = ",\n".join(
        f"case when is_object then get_json_object(line, '$.{name}') end as {name}"
        for name in text_fields
    )
    return spark.sql(
        f"""
        with parsed as (
            select
                row_number,
                line,
                -- the line's JSON kind; null when it is not valid JSON (Spark's
                -- parser stops after the first value: text after an object or
                -- an array is caught by the line's last character)
                case
                    when left(trimmed, 1) not in ('{{', '[')
                        or right(trimmed, 1) = case left(trimmed, 1) when '{{' then '}}' else ']' end
                        then schema_of_variant(try_parse_json(line))
                end as kind
            from (select *, trim(both ' \\t\\r' from line) as trimmed from {view}) as lines
        ),
        readable as (
            select
                row_number,
                line,
                coalesce(kind like 'OBJECT%', false) as is_object,
                case
                    when kind is null then 'unreadable line: not valid JSON'
                    when kind like 'OBJECT%' then null
                    -- the kind as DuckDB's json_type names it (the DuckDB loader's text)
                    else 'unreadable line: JSON ' || case
                        when kind like 'ARRAY%' then 'array'
                        when kind = 'STRING' then 'varchar'
                        when kind = 'BOOLEAN' then 'boolean'
                        when kind = 'VOID' then 'null'
                        when kind = 'BIGINT' then 'bigint'
                        else 'double'
                    end || ', not an object'
                end as unreadable
            from parsed
        ),
        fields as (
            select
                readable.*,
                case when is_object then get_json_object(line, '$.timestamp') end as timestamp_text,
                case when is_object
                    then from_json(line, 'timestamp double', map('mode', 'PERMISSIVE')).timestamp
                end as timestamp_number
            from readable
        )
        select
            row_number,
            {extracted},
            case
                -- epoch milliseconds as a JSON number with a fraction or an
                -- exponent: ISO text keeping microseconds, as the DuckDB path
                when timestamp_text rlike '^-?[0-9]+$' or timestamp_number is null then timestamp_text
                else date_format(timestamp_micros(cast(round(timestamp_number * 1000) as bigint)), "{_ISO_MICROS}")
            end as event_timestamp,
            case when is_object then get_json_object(line, '$.properties') end as properties,
            case when not is_object then line end as raw_record,
            unreadable as parse_error,
            case when is_object then line end as typed_fields
        from fields
        """
    )


def _numbered_lines(spark, path: Path):
    """The file's lines (``line``) with their 1-based physical line number (``row_number``), blank
    lines left out, in DataFrame operations only: a Spark Connect client has no RDDs.

    Spark's text reader splits lines as ``textFile`` does (at \\n, \\r or \\r\\n) and reads a
    file's blocks in order; a line's position is its block's start, then its order within the
    block's task (``monotonically_increasing_id`` grows within a task), numbered in one window
    over the file.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    whitespace = "".join(f"\\x{{{ord(char):x}}}" for char in jsonl.WHITESPACE)
    in_file_order = Window.orderBy(F.col("block_start"), F.col("position_in_block"))
    return (
        spark.read.text(str(path))
        .select(
            F.col("value").alias("line"),
            F.col("_metadata.file_block_start").alias("block_start"),
            F.monotonically_increasing_id().alias("position_in_block"),
        )
        .select(F.row_number().over(in_file_order).cast("bigint").alias("row_number"), "line")
        .where(F.regexp_replace("line", f"[{whitespace}]", "") != "")
    )


def _read_parquet(spark, path: Path):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    frame = spark.read.parquet(str(path))
    kinds = {column.name: column.dataType for column in frame.schema.fields}
    # the row's position in the file, from the Parquet reader itself (no RDD: Spark Connect has none)
    frame = frame.select(
        F.struct(*[F.col(f"`{name}`") for name in frame.columns]).alias("record"),
        F.col("_metadata.row_index").alias("index"),
    )
    selects = [(F.col("index") + 1).cast("bigint").alias("row_number")]
    for name in FIELDS:
        target = "event_timestamp" if name == "timestamp" else name
        if name not in kinds:
            selects.append(F.lit(None).cast("string").alias(target))
            continue
        column = F.col(f"record.`{name}`")
        kind = kinds[name]
        if name == "timestamp" and isinstance(kind, T.TimestampType | T.TimestampNTZType):
            text = F.date_format(column, _ISO_MICROS if isinstance(kind, T.TimestampType) else "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
        elif name == "timestamp" and isinstance(kind, T.FloatType | T.DoubleType | T.DecimalType):
            text = F.date_format(
                F.timestamp_micros(F.round(column.cast("double") * 1000).cast("bigint")), _ISO_MICROS
            )
        elif name == "properties" and isinstance(kind, T.StructType | T.MapType):
            text = F.to_json(column)
        else:
            text = column.cast("string")
        selects.append(text.alias(target))
    typed = [
        name
        for name, kind in kinds.items()
        if name not in FIELDS
        or (name in IDENTIFIER_FIELDS and not isinstance(kind, T.StringType))
    ]
    typed_fields = (
        F.to_json(F.struct(*[F.col(f"record.`{name}`").alias(name) for name in typed]))
        if typed
        else F.lit(None).cast("string")
    )
    return frame.select(
        *selects,
        F.lit(None).cast("string").alias("raw_record"),
        F.lit(None).cast("string").alias("parse_error"),
        typed_fields.alias("typed_fields"),
    )


def _python_rows(spark, rows: Iterator[RawRow]):
    """Raw rows read in Python (the loader's CSV and OTLP readers) -> a DataFrame.

    ``guarded`` keeps the rows read before any error and adds the error as
    an unreadable-file row, as the DuckDB loader does.
    """
    schema = ", ".join(f"{name} {'bigint' if name == 'row_number' else 'string'}" for name in RAW_ROW_COLUMNS)
    return spark.createDataFrame([row.as_tuple() for row in guarded(rows)], schema)
