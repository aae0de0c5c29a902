"""CSV: Python's csv module, because it reports the line each record came
from and tolerates rows with the wrong number of fields (kept whole, with
the reason, for quarantine). DuckDB's CSV reader reports neither for the rows
it reads. Rows stream to the warehouse a batch at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb

from convo_warehouse.lib.landing.rows import FIELDS, RawRow, stage_python_rows

# A field may be as long as a JSONL line (64 MiB): the csv module's own
# limit, 128 KiB, stopped a file whose properties held a long transcript.
FIELD_SIZE_LIMIT = 64 * 1024 * 1024


class CsvReader:
    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, failure: Exception | None) -> None:
        stage_python_rows(con, self.rows(path))

    def rows(self, path: Path) -> Iterator[RawRow]:
        """A CSV file's raw rows (text), for any engine's loader."""
        if csv.field_size_limit() < FIELD_SIZE_LIMIT:
            csv.field_size_limit(FIELD_SIZE_LIMIT)
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return
            names = [name.strip() for name in header]
            for record in reader:
                if not record or all(not value.strip() for value in record):
                    continue  # blank line: not a row
                if len(record) != len(names):
                    raw = io.StringIO()
                    csv.writer(raw).writerow(record)
                    yield RawRow(
                        reader.line_num,
                        {},
                        raw_record=raw.getvalue().rstrip("\r\n"),
                        parse_error=f"unreadable row: expected {len(names)} fields, found {len(record)}",
                    )
                    continue
                values = {name: (value if value != "" else None) for name, value in zip(names, record)}
                # CSV values are all text: only columns without a column of
                # their own (an alias such as `id`) need keeping.
                extra = {name: value for name, value in values.items() if name not in FIELDS and value is not None}
                yield RawRow(reader.line_num, values, typed_fields=json.dumps(extra) if extra else None)


READER = CsvReader()
