"""OTLP/JSON trace exports, one per line: GenAI spans become contract events
(the mapping is :mod:`convo_warehouse.lib.otel_genai`). A row number is the
event's position among the file's mapped events; an unreadable line gets one
row with its text."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb

from convo_warehouse.lib.landing.rows import FIELDS, empty_columns, stage_python_rows


class OtlpReader:
    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, failure: Exception | None) -> None:
        stage_python_rows(con, self.rows(path))

    def rows(self, path: Path) -> dict[str, list]:
        """The raw columns (text) by name, for any engine's loader."""
        from convo_warehouse.lib.event_validation import field_text
        from convo_warehouse.lib.otel_genai import map_export_request

        columns = empty_columns()

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


READER = OtlpReader()
