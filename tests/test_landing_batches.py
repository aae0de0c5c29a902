"""The loader turns JSONL lines into rows a batch of files at a time: any
batch size loads the same rows and counts, and a batch that fails is loaded
again file by file, so the failing file still gets its fallback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest

from convo_warehouse.lib.landing import load as landing_load
from convo_warehouse.lib.landing import load_landing

RAW_COLUMNS = (
    "source_file, file_hash, row_number, event_id, conversation_id, session_id, user_id, customer_id, "
    "event_type, event_timestamp, channel, properties, raw_record, parse_error, typed_fields"
)


def _event(number: int, conversation: str) -> str:
    return json.dumps({
        "event_id": f"e-{number}", "conversation_id": conversation, "event_type": "user_message",
        "timestamp": f"2024-03-01T10:{number % 60:02d}:00Z", "properties": {"content": f"hello {number}"},
    })  # fmt: skip


def _landing(root: Path) -> Path:
    """Four JSONL files (one gzip, one empty, bad and blank lines among good ones) and a CSV between them."""
    landing = root / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text("\n".join([_event(1, "c1"), "", "{broken", _event(2, "c1")]) + "\n")
    (landing / "b.csv").write_text("event_id,conversation_id,event_type,timestamp\ncsv-1,c2,user_message,2024-03-01 10:00:00\n")
    with gzip.open(landing / "c.jsonl.gz", "wt") as handle:
        handle.write("\n".join(_event(number, "c3") for number in range(3, 10)) + "\n[1, 2]\n")
    (landing / "d.jsonl").write_text("")
    (landing / "e.jsonl").write_text('{"id": 5}\n' + _event(10, "c4") + "\n")  # a v1.1 name only: still a row
    return landing


def _load(path: Path, landing: Path) -> tuple[list[tuple], list[tuple], tuple]:
    con = duckdb.connect(str(path))
    report = load_landing(con, landing, progress=False)
    rows = con.execute(f"select {RAW_COLUMNS} from raw.events order by source_file, row_number").fetchall()
    files = con.execute(
        "select source_file, file_hash, file_format, file_bytes, raw_rows from raw.loaded_files order by source_file"
    ).fetchall()
    con.close()
    return rows, files, (report.files_loaded, report.rows_loaded, report.unreadable_rows)


def test_any_batch_size_loads_the_same_rows_and_counts(tmp_path, monkeypatch):
    landing = _landing(tmp_path)
    flushes = []
    real_flush = landing_load._LineBatch.flush

    def counted_flush(self):
        if self.files:
            flushes.append([pending.relative for _, pending in self.files])
        real_flush(self)

    monkeypatch.setattr(landing_load._LineBatch, "flush", counted_flush)
    loaded = {}
    for batch_lines in (0, 5, 1_000_000):
        monkeypatch.setattr(landing_load, "BATCH_LINES", batch_lines)
        flushes.clear()
        loaded[batch_lines] = _load(tmp_path / f"batch{batch_lines}.duckdb", landing)
        loaded[batch_lines, "flushes"] = list(flushes)

    assert loaded[0] == loaded[5] == loaded[1_000_000]
    rows, files, report = loaded[0]
    assert report == (["a.jsonl", "b.csv", "c.jsonl.gz", "d.jsonl", "e.jsonl"], 14, 2)
    assert [(name, count) for name, _, _, _, count in files] == [
        ("a.jsonl", 3), ("b.csv", 1), ("c.jsonl.gz", 8), ("d.jsonl", 0), ("e.jsonl", 2),
    ]  # fmt: skip
    assert [(row[0], row[2], row[13]) for row in rows if row[13]] == [
        ("a.jsonl", 3, "unreadable line: not valid JSON"),
        ("c.jsonl.gz", 8, "unreadable line: JSON array, not an object"),
    ]
    # the batch sizes were really used: a file at a time, then several, then all at once
    assert loaded[0, "flushes"] == [["a.jsonl"], ["c.jsonl.gz"], ["d.jsonl"], ["e.jsonl"]]
    assert loaded[5, "flushes"] == [["a.jsonl", "c.jsonl.gz"], ["d.jsonl", "e.jsonl"]]
    assert loaded[1_000_000, "flushes"] == [["a.jsonl", "c.jsonl.gz", "d.jsonl", "e.jsonl"]]


def test_a_failing_batch_is_loaded_again_file_by_file_and_the_file_gets_its_fallback(tmp_path, monkeypatch):
    landing = _landing(tmp_path)
    expected = _load(tmp_path / "expected.duckdb", landing)
    real_batch_rows = landing_load.jsonl.JsonlReader.batch_rows
    attempts = []

    def failing_on_c(self, batch):
        attempts.append(batch)
        # DuckDB's reading of c.jsonl.gz cannot become rows: only its fallback (Python) can
        return f"""
            select * from ({real_batch_rows(self, batch)})
            where case when source_file = 'c.jsonl.gz' then error('no rows from this batch') else true end
        """

    monkeypatch.setattr(landing_load.jsonl.JsonlReader, "batch_rows", failing_on_c)
    assert _load(tmp_path / "retried.duckdb", landing) == expected
    # one batch of all four, then a file per batch until c.jsonl.gz failed alone, then the rest
    assert len(attempts) > 2


@pytest.mark.parametrize("batch_lines", [0, 1_000_000])
def test_a_run_that_fails_after_a_batch_leaves_nothing_behind(tmp_path, monkeypatch, batch_lines):
    landing = _landing(tmp_path)
    monkeypatch.setattr(landing_load, "BATCH_LINES", batch_lines)

    def machine_error(con, report, pending, rows, unreadable):
        raise MemoryError("out of memory")

    monkeypatch.setattr(landing_load, "_record_loaded", machine_error)
    con = duckdb.connect(str(tmp_path / "failed.duckdb"))
    with pytest.raises(MemoryError):
        load_landing(con, landing, progress=False)
    assert con.execute("select count(*) from raw.events").fetchone() == (0,)
    assert con.execute("select count(*) from raw.loaded_files").fetchone() == (0,)
