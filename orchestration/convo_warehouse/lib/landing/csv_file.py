"""CSV: Python's csv module, because it reports the line each record came
from and tolerates rows with the wrong number of fields (kept whole, with
the reason, for quarantine)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb

from convo_warehouse.lib.landing.rows import FIELDS, empty_columns, stage_python_rows


class CsvReader:
    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, failure: Exception | None) -> None:
        stage_python_rows(con, self.rows(path))

    def rows(self, path: Path) -> dict[str, list]:
        """A CSV file's raw columns (text) by name, for any engine's loader."""
        columns = empty_columns()

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


READER = CsvReader()
