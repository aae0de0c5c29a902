"""OTLP/JSON trace exports, one per line: GenAI spans become contract events
(the mapping is :mod:`convo_warehouse.lib.otel_genai`). A row number is the
event's position among the file's mapped events; a line that cannot be read
or mapped, whatever the error, gets one row with its text and the error."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb

from convo_warehouse.lib.landing.rows import FIELDS, RawRow, stage_python_rows


class OtlpReader:
    def stage(self, con: duckdb.DuckDBPyConnection, path: Path, failure: Exception | None) -> None:
        stage_python_rows(con, self.rows(path))

    def rows(self, path: Path) -> Iterator[RawRow]:
        """The raw rows (text), for any engine's loader."""
        from convo_warehouse.lib.event_validation import field_text
        from convo_warehouse.lib.otel_genai import map_export_request

        row_number = 0
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line.strip():
                    continue
                try:
                    events = map_export_request(json.loads(line)).events
                except MemoryError:
                    raise
                except Exception as error:  # noqa: BLE001 - any line the mapping cannot take is quarantined
                    row_number += 1
                    detail = str(error) or type(error).__name__
                    yield RawRow(row_number, {}, raw_record=line,
                                 parse_error=f"unreadable line {line_number}: {detail[:200]}")
                    continue
                for event in events:
                    row_number += 1
                    # mapped events carry only contract fields, identifiers as text
                    yield RawRow(row_number, {
                        name: json.dumps(event[name]) if name == "properties" and event.get(name) is not None
                        else field_text(event.get(name))
                        for name in FIELDS
                    })


READER = OtlpReader()
