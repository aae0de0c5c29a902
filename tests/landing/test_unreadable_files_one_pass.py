"""However many landing files DuckDB's readers cannot read, one load run loads them all (issue 47,
item 11): each is found before it is read and goes to its fallback, and a failure no check foresaw
sends the file to its fallback then, without aborting the run's transaction."""

from __future__ import annotations

import gzip
import json

import duckdb

from convo_warehouse.lib.landing import jsonl, load_landing
from convo_warehouse.lib.landing.files import LineCheck


def line(event_id: str) -> bytes:
    return json.dumps({"event_id": event_id, "conversation_id": "c-1", "event_type": "user_message",
                       "timestamp": "2026-01-05T10:00:00Z", "properties": {"content": "hi"}}).encode()


def test_many_unreadable_files_load_in_one_run(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "good-1.jsonl").write_bytes(line("good-1") + b"\n")
    for number in range(3):  # invalid UTF-8 in a line
        (landing / f"bad-utf8-{number}.jsonl").write_bytes(line(f"u{number}-a") + b"\n\xff\xfe broken\n"
                                                          + line(f"u{number}-b") + b"\n")
    (landing / "bad-cr.jsonl").write_bytes(line("cr-a") + b"\r" + line("cr-b") + b"\n")  # a lone carriage return
    (landing / "bad-gz.jsonl.gz").write_bytes(gzip.compress(line("gz-a") + b"\n\xc3\x28\n"))  # invalid UTF-8 inside
    (landing / "bad.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    # CRLF line ends: DuckDB's line reader fails on them too; the fallback reads them whole
    (landing / "good-2.jsonl").write_bytes(line("good-2") + b"\r\n" + line("good-3") + b"\r\n")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = load_landing(con, landing, progress=False)
    assert len(report.files_loaded) == 8
    ids = {row[0] for row in con.execute("select event_id from raw.events where event_id is not null").fetchall()}
    assert {"good-1", "good-2", "good-3", "u0-a", "u0-b", "u2-b", "gz-a"} <= ids
    errors = con.execute("select source_file, parse_error from raw.events where parse_error is not null").fetchall()
    assert any(source == "bad.parquet" and "unreadable file" in error for source, error in errors)
    assert sum(1 for source, _ in errors if source.startswith("bad-utf8")) == 3  # one bad line each, kept


def test_a_failure_no_check_foresaw_sends_the_file_to_its_fallback(tmp_path, monkeypatch):
    """DuckDB's line reader failing on a file the checks passed: the file is read by the Python
    fallback, in the same run, and the files before and after it keep their rows."""
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in ("a", "b", "c"):
        (landing / f"{name}.jsonl").write_bytes(line(f"{name}-1") + b"\n" + line(f"{name}-2") + b"\n")
    fast_path = jsonl._stage_lines_duckdb
    fast_reads = []

    def failing_on_b(con, path):
        fast_reads.append(path.name)
        if path.name == "b.jsonl":
            con.execute("select error('the fast path broke')")
        fast_path(con, path)

    monkeypatch.setattr(jsonl, "_stage_lines_duckdb", failing_on_b)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = load_landing(con, landing, progress=False)
    assert fast_reads == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert report.files_loaded == ["a.jsonl", "b.jsonl", "c.jsonl"]
    rows = con.execute("select source_file, row_number, event_id, parse_error from raw.events order by all").fetchall()
    assert rows == [(f"{name}.jsonl", number, f"{name}-{number}", None) for name in "abc" for number in (1, 2)]
    assert con.execute("select count(*) from raw.loaded_files").fetchone() == (3,)


def test_the_line_check_reads_across_blocks():
    check = LineCheck(max_line_bytes=10)
    check.feed(b"12345")
    check.feed(b"678\n123")
    assert check.finish() is None
    check = LineCheck(max_line_bytes=10)
    check.feed(b"123456")
    check.feed(b"78901\n")
    assert "line over 10 bytes" in check.finish()
    check = LineCheck(max_line_bytes=100)
    check.feed(b"abc\xc3")  # a character split across two blocks
    check.feed(b"\xa9\n")
    assert check.finish() is None
    check = LineCheck(max_line_bytes=100)
    check.feed(b"abc\n")
    check.feed(b"def\r\n")
    assert check.finish() == "a carriage return"


def test_duckdbs_reader_rejects_every_kind_of_invalid_utf8(tmp_path):
    """The line check does not decode the file: DuckDB's line reader rejects invalid UTF-8 itself,
    and the file is read by the Python fallback (its bad bytes become U+FFFD), the good lines kept."""
    landing = tmp_path / "landing"
    landing.mkdir()
    kinds = {
        "lone-continuation": b"\x80",
        "overlong": b"\xc0\x80",
        "surrogate": b"\xed\xa0\x80",
        "beyond-unicode": b"\xf4\x90\x80\x80",
        "truncated-at-end": b"\xc3",
    }
    for name, bad in kinds.items():
        ending = b"\n" if name != "truncated-at-end" else b""
        (landing / f"{name}.jsonl").write_bytes(line(f"{name}-1") + b"\n" + line(f"{name}-3") + b"\nx" + bad + ending)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_landing(con, landing, progress=False)
    for name in kinds:
        rows = con.execute(
            "select row_number, event_id, raw_record from raw.events where source_file = ? order by 1",
            [f"{name}.jsonl"],
        ).fetchall()
        assert [(number, event_id) for number, event_id, _ in rows] == [(1, f"{name}-1"), (2, f"{name}-3"), (3, None)]
        assert "\ufffd" in rows[2][2], name
