"""Loading and staging: nothing lost, duplicates counted, late data corrects,
re-runs change nothing, incremental equals full refresh, one writer at a time."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from convo_warehouse.lib.warehouse import WarehouseBusyError, connect, writer_lock
from support.warehouse import STAGED


def event(event_id, conversation_id, event_type, timestamp, **properties):
    record = {
        "event_id": event_id,
        "conversation_id": conversation_id,
        "event_type": event_type,
        "timestamp": timestamp,
    }
    if properties:
        record["properties"] = properties
    return record


def write_jsonl(path: Path, lines: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)


# One JSONL file with one row per quarantine reason, each commented with its
# defect, around valid rows that must be staged.
BAD_JSONL = [
    event("ok-1", "c1", "conversation_started", "2024-03-01T10:00:00Z"),
    "{this is not json",  # unreadable line: bad JSON
    "[1, 2, 3]",  # unreadable line: JSON but not an object
    "",  # blank line: skipped, not a row
    "  \u00a0\u3000 ",  # a line of (Unicode) spaces is blank too
    {"conversation_id": "c1", "event_type": "user_message", "timestamp": "2024-03-01T10:00:01Z"},  # no event_id
    event("bad-empty", "", "user_message", "2024-03-01T10:00:01Z"),  # empty conversation_id is missing
    event("bad-type", "c1", "   ", "2024-03-01T10:00:01Z"),  # blank event_type is missing
    {"event_id": "bad-ts-missing", "conversation_id": "c1", "event_type": "user_message"},  # no timestamp
    event("bad-ts-date", "c1", "user_message", "2024-03-01"),  # a date alone
    event("bad-ts-word", "c1", "user_message", "now"),  # a word
    event("bad-ts-future", "c1", "user_message", "2999-01-01T00:00:00Z"),  # far in the future
    {**event("bad-props-list", "c1", "user_message", "2024-03-01T10:00:02Z"), "properties": [1, 2]},  # properties a list
    {**event("bad-props-num", "c1", "user_message", "2024-03-01T10:00:02Z"), "properties": 7},  # properties a number
    event("ok-2", "c1", "message_sent", 1709287205000, content="hello"),  # alias + epoch ms: valid
    event("ok-3", "c1", "mystery_event", "2024-03-01T10:00:06Z"),  # unknown type: staged, flagged
]

EXPECTED_REASONS = {
    "unreadable_line": 2,
    "missing_required_field": 4,
    "unparseable_timestamp": 2,
    "future_timestamp": 1,
    "properties_not_object": 2,
}


def test_each_bad_row_class_lands_in_quarantine_with_its_reason(warehouse):
    write_jsonl(warehouse.landing / "events.jsonl", BAD_JSONL)
    # CSV: a row with too few fields, an empty required field, a valid row.
    (warehouse.landing / "events.csv").write_text(
        textwrap.dedent(
            """\
            event_id,conversation_id,event_type,timestamp,properties
            csv-1,c2,user_message,2024-03-01 11:00:00,"{""content"": ""hi""}"
            csv-2,c2,user_message
            csv-3,,user_message,2024-03-01 11:00:01,
            """
        )
    )
    (warehouse.landing / "broken.parquet").write_bytes(b"not a parquet file")

    report = warehouse.load()
    assert report.rows_loaded == len(BAD_JSONL) - 2 + 3 + 1  # blank lines not counted
    warehouse.build(STAGED)

    reasons = dict(warehouse.query("select reason, count(*) from quarantine.rejected_events group by 1"))
    assert reasons == {
        **EXPECTED_REASONS,
        "unreadable_line": EXPECTED_REASONS["unreadable_line"] + 1,  # the short CSV row
        "missing_required_field": EXPECTED_REASONS["missing_required_field"] + 1,  # csv-3
        "unreadable_file": 1,
    }
    # Every rejected row says where it came from.
    located = warehouse.query(
        "select source_file, row_number from quarantine.rejected_events where reason = 'unreadable_line' order by 1, 2"
    )
    assert located == [("events.csv", 3), ("events.jsonl", 2), ("events.jsonl", 3)]
    assert warehouse.scalar(
        "select raw_record from quarantine.rejected_events where source_file = 'events.jsonl' and row_number = 2"
    ) == "{this is not json"

    staged = dict(warehouse.query("select event_id, is_known_type from staging.stg_events"))
    assert staged == {"ok-1": True, "ok-2": True, "ok-3": False, "csv-1": True}
    assert warehouse.scalar("select event_type from staging.stg_events where event_id = 'ok-2'") == "user_message"

    raw, staged_rows, duplicates, quarantined, unknown = warehouse.query(
        "select sum(raw_rows), sum(staged_rows), sum(duplicates_dropped), sum(quarantined_rows), "
        "sum(unknown_type_rows) from audit.reconciliation"
    )[0]
    assert (raw, staged_rows, duplicates, quarantined, unknown) == (18, 4, 0, 14, 1)


def test_duplicates_within_and_across_files_count_once(warehouse):
    first = event("d-1", "c1", "user_message", "2024-03-01T10:00:00Z", content="first copy")
    write_jsonl(
        warehouse.landing / "a.jsonl",
        [first, first, event("d-2", "c1", "agent_message", "2024-03-01T10:00:01Z")],
    )
    # Same event_id in a later file with different content: still a duplicate,
    # and the first delivered copy (a.jsonl, row 1) wins.
    write_jsonl(
        warehouse.landing / "b.jsonl.gz",
        [event("d-1", "c1", "user_message", "2024-03-01T10:00:00Z", content="second copy")],
    )
    # A bad copy of d-2 never wins against a good one.
    write_jsonl(warehouse.landing / "0-first.jsonl", [event("d-2", "c1", "agent_message", "soon")])
    warehouse.load()
    warehouse.build(STAGED)

    assert warehouse.query("select event_id, source_file, row_number from staging.stg_events order by 1") == [
        ("d-1", "a.jsonl", 1),
        ("d-2", "a.jsonl", 3),
    ]
    assert warehouse.scalar("select content from staging.stg_events where event_id = 'd-1'") == "first copy"
    assert warehouse.query(
        "select sum(raw_rows), sum(staged_rows), sum(duplicates_dropped), sum(quarantined_rows) "
        "from audit.reconciliation"
    ) == [(5, 2, 2, 1)]


def test_file_loaded_once_by_content_and_changed_content_loaded_again(warehouse):
    rows = [event("h-1", "c1", "user_message", "2024-03-01T10:00:00Z")]
    write_jsonl(warehouse.landing / "a.jsonl", rows)
    assert len(warehouse.load().files_loaded) == 1
    write_jsonl(warehouse.landing / "copy" / "a-renamed.jsonl", rows)  # same content, new path
    report = warehouse.load()
    assert report.files_loaded == [] and report.files_skipped == ["a.jsonl", "copy/a-renamed.jsonl"]
    write_jsonl(warehouse.landing / "a.jsonl", rows + [event("h-2", "c1", "agent_message", "2024-03-01T10:00:01Z")])
    assert warehouse.load().files_loaded == ["a.jsonl"]
    warehouse.build(STAGED)
    assert warehouse.query("select count(*), count(distinct event_id) from staging.stg_events") == [(2, 2)]
    assert warehouse.scalar("select sum(duplicates_dropped) from audit.reconciliation") == 1


def test_parquet_typed_columns_and_struct_properties(warehouse):
    table = pa.table(
        {
            "event_id": ["p-1", "p-2"],
            "session_id": ["s-1", "s-1"],
            "customer_id": ["u-9", None],
            "event_type": ["conversation_started", "agent_response"],
            "timestamp": pa.array([1709287200000, 1709287201500], pa.int64()),
            "properties": pa.array([{"device": "mobile", "turn": None}, {"device": None, "turn": 2}]),
        }
    )
    pq.write_table(table, warehouse.landing / "typed.parquet")
    tz_table = pa.table(
        {
            "event_id": ["p-3"],
            "conversation_id": ["s-1"],
            "event_type": ["user_message"],
            "timestamp": pa.array([1709287202000], pa.timestamp("ms", tz="Europe/Berlin")),
            "properties": ['{"content": "hi there"}'],
        }
    )
    pq.write_table(tz_table, warehouse.landing / "tz.parquet")
    warehouse.load()
    warehouse.build(STAGED)
    assert warehouse.query(
        "select event_id, conversation_id, user_id, event_type, strftime(event_at, '%Y-%m-%d %H:%M:%S.%g'), device, turn "
        "from staging.stg_events order by event_id"
    ) == [
        ("p-1", "s-1", "u-9", "conversation_started", "2024-03-01 10:00:00.000", "mobile", None),
        ("p-2", "s-1", None, "agent_message", "2024-03-01 10:00:01.500", None, 2),
        ("p-3", "s-1", None, "user_message", "2024-03-01 10:00:02.000", None, None),
    ]


def conversation_day(conversation_id: str, day: str, turns: int) -> list[dict]:
    events = [event(f"{conversation_id}-start", conversation_id, "conversation_started", f"{day}T09:00:00Z")]
    for turn in range(turns):
        events.append(
            event(f"{conversation_id}-u{turn}", conversation_id, "user_message", f"{day}T09:0{turn + 1}:00Z", content=f"question {turn}")
        )
    return events


def test_late_file_corrects_an_earlier_day(warehouse):
    write_jsonl(warehouse.landing / "day1.jsonl", conversation_day("c-early", "2024-03-01", 1))
    write_jsonl(warehouse.landing / "day5.jsonl", conversation_day("c-late", "2024-03-05", 2))
    warehouse.load()
    warehouse.build()
    assert warehouse.query(
        "select conversation_date, count(*), sum(user_turns) from marts.fct_conversations group by 1 order by 1"
    ) == [(date(2024, 3, 1), 1, 1), (date(2024, 3, 5), 1, 2)]

    # Four days late: one more turn for c-early and a new conversation on day 1.
    late = [event("c-early-u9", "c-early", "user_message", "2024-03-01T09:30:00Z", content="anyone?")]
    late += conversation_day("c-new", "2024-03-01", 1)
    write_jsonl(warehouse.landing / "late" / "day1-late.jsonl", late)
    warehouse.load()
    warehouse.build()
    assert warehouse.query(
        "select conversation_date, count(*), sum(user_turns) from marts.fct_conversations group by 1 order by 1"
    ) == [(date(2024, 3, 1), 2, 3), (date(2024, 3, 5), 1, 2)]


HOLD_CONNECTION = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists t as select 1 as x")
print("ready", flush=True)
time.sleep(30)
"""


def test_python_connections_share_dbts_memory_cap(tmp_path, monkeypatch):
    """The loader, classifier, checks and publish open the warehouse with the
    cap dbt's profile sets (same variable, same default): under DuckDB's own
    default (80 % of memory) a large load would hold far more than the cap."""
    from convo_warehouse.lib import warehouse

    profiles = (warehouse.REPO_ROOT / "profiles.yml").read_text()
    duckdb_outputs = profiles.count("type: duckdb")
    default_cap = f"env_var('{warehouse.MEMORY_LIMIT_ENV}', '{warehouse.DEFAULT_MEMORY_LIMIT}')"
    assert duckdb_outputs >= 1 and profiles.count(default_cap) == duckdb_outputs

    def cap() -> str:
        con = connect(tmp_path / "capped.duckdb")
        try:
            return con.execute("select current_setting('memory_limit')").fetchone()[0]
        finally:
            con.close()

    monkeypatch.delenv(warehouse.MEMORY_LIMIT_ENV, raising=False)
    assert cap() == "2.3 GiB"  # 2.5GB (10^9 bytes each) in DuckDB's binary units
    monkeypatch.setenv(warehouse.MEMORY_LIMIT_ENV, "1GB")
    assert cap() == "953.6 MiB"


def test_loader_lowers_the_memory_cap_while_loading_and_restores_it(tmp_path, monkeypatch):
    """The loader runs under LOADER_MEMORY_LIMIT (DuckDB keeps what the load
    wrote cached up to its cap), never above the configured cap, and leaves
    the connection with the configured cap."""
    from convo_warehouse.lib import warehouse
    from convo_warehouse.lib.landing import jsonl, load

    seen_during_load = []
    stage = jsonl.JsonlReader.stage

    def recording_stage(self, con, path, failure):
        seen_during_load.append(con.execute("select current_setting('memory_limit')").fetchone()[0])
        return stage(self, con, path, failure)

    monkeypatch.setattr(jsonl.JsonlReader, "stage", recording_stage)
    landing = tmp_path / "landing"
    write_jsonl(landing / "a.jsonl", [event("e1", "c1", "conversation_started", "2024-03-01T10:00:00Z")])
    monkeypatch.delenv(warehouse.MEMORY_LIMIT_ENV, raising=False)
    con = connect(tmp_path / "w.duckdb")
    try:
        load.load_landing(con, landing, progress=False)
        assert seen_during_load == ["953.6 MiB"]  # 1GB
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "2.3 GiB"  # the default 2.5GB
    finally:
        con.close()

    # a cap configured below the loader's is kept as it is
    monkeypatch.setenv(warehouse.MEMORY_LIMIT_ENV, "800MB")
    write_jsonl(landing / "b.jsonl", [event("e2", "c1", "user_message", "2024-03-01T10:00:01Z")])
    con = connect(tmp_path / "w.duckdb")
    try:
        load.load_landing(con, landing, progress=False)
        assert seen_during_load[1:] == ["762.9 MiB"]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3GB", 3_000_000_000),
        ("1500MB", 1_500_000_000),
        ("4g", 4_000_000_000),
        ("2 gigabytes", 2_000_000_000),
        ("2.7 GiB", int(2.7 * 1024**3)),
        ("512kib", 512 * 1024),
        ("16383.9 PiB", int(16383.9 * 1024**5)),  # what DuckDB reports for no cap
    ],
)
def test_memory_sizes_read_as_duckdb_writes_them(text, expected):
    from convo_warehouse.lib.warehouse import size_bytes

    assert size_bytes(text) == expected


def test_a_memory_size_duckdb_would_not_read_is_refused():
    from convo_warehouse.lib.warehouse import size_bytes

    for text in ("three gigabytes", "80%", "4 PB"):
        with pytest.raises(ValueError, match="not a memory size"):
            size_bytes(text)


@pytest.mark.parametrize("configured", ["4G", "2 gigabytes", "3000m"])
def test_every_cap_duckdb_takes_is_lowered_for_the_loader(configured, tmp_path, monkeypatch):
    """A cap written in any of DuckDB's units (connect() has set it) is compared and restored."""
    from convo_warehouse.lib import warehouse

    monkeypatch.setenv(warehouse.MEMORY_LIMIT_ENV, configured)
    con = connect(tmp_path / "w.duckdb")
    try:
        before = con.execute("select current_setting('memory_limit')").fetchone()[0]
        with warehouse.memory_capped(con, "1GB"):
            assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == before
    finally:
        con.close()


def test_second_writer_gets_a_clear_busy_error(tmp_path):
    database = tmp_path / "w.duckdb"
    with writer_lock(database):
        result = subprocess.run(
            [sys.executable, "-m", "convo_warehouse.cli", "run", "--warehouse", str(database), "--landing", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert "warehouse is busy" in result.stderr
    assert not database.exists()  # the second run touched nothing

    # Another process holding the DuckDB file open: a clear error, not a crash.
    holder = subprocess.Popen([sys.executable, "-c", HOLD_CONNECTION, str(database)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseBusyError, match="warehouse is busy"):
            connect(database)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    con = connect(database)  # free again, and not corrupted
    assert con.execute("select x from t").fetchall() == [(1,)]
    con.close()


# --------------------------------------------------------------------------- which files, read how


def test_links_out_of_the_landing_folder_are_refused(warehouse, tmp_path):
    outside = tmp_path / "elsewhere" / "secret.jsonl"  # not under the landing folder
    write_jsonl(outside, [event("secret-1", "c9", "user_message", "2024-03-01T10:00:00Z")])
    (warehouse.landing / "link-out.jsonl").symlink_to(outside)
    inside = warehouse.landing / "day" / "a.jsonl"
    write_jsonl(inside, [event("in-1", "c1", "user_message", "2024-03-01T10:00:00Z")])
    (warehouse.landing / "link-in.jsonl").symlink_to(inside)  # a link inside the folder is followed

    report = warehouse.load()

    assert report.files_refused == ["link-out.jsonl"]
    assert "link-out.jsonl" in report.summary() and "outside the landing folder" in report.summary()
    assert report.files_loaded == ["day/a.jsonl"] and report.files_skipped == ["link-in.jsonl"]  # same content
    assert warehouse.query("select distinct event_id from raw.events") == [("in-1",)]


def test_glob_characters_in_a_file_name_are_read_literally(warehouse):
    # DuckDB's readers expand * ? [..]: "ev[1].jsonl" would read "ev1.jsonl"
    write_jsonl(warehouse.landing / "ev[1].jsonl", [event("bracket", "c1", "user_message", "2024-03-01T10:00:00Z")])
    write_jsonl(warehouse.landing / "ev1.jsonl", [event("plain", "c1", "user_message", "2024-03-01T10:00:01Z")])
    write_jsonl(warehouse.landing / "a*b.jsonl.gz", [event("star", "c1", "user_message", "2024-03-01T10:00:02Z")])
    write_jsonl(warehouse.landing / "axb.jsonl.gz", [event("axb", "c1", "user_message", "2024-03-01T10:00:03Z")])
    pq.write_table(
        pa.table({"event_id": ["question"], "conversation_id": ["c1"], "event_type": ["user_message"],
                  "timestamp": ["2024-03-01T10:00:04Z"]}),
        warehouse.landing / "q?.parquet",
    )  # fmt: skip
    pq.write_table(
        pa.table({"event_id": ["qx"], "conversation_id": ["c1"], "event_type": ["user_message"],
                  "timestamp": ["2024-03-01T10:00:05Z"]}),
        warehouse.landing / "qx.parquet",
    )  # fmt: skip
    warehouse.load()
    assert warehouse.query("select source_file, event_id from raw.events order by 1") == [
        ("a*b.jsonl.gz", "star"),
        ("axb.jsonl.gz", "axb"),
        ("ev1.jsonl", "plain"),
        ("ev[1].jsonl", "bracket"),
        ("q?.parquet", "question"),
        ("qx.parquet", "qx"),
    ]


def test_python_fallback_streams_a_gzip_file(warehouse, monkeypatch):
    """A .jsonl.gz DuckDB cannot read (invalid UTF-8) is read by Python a
    batch at a time: its Python allocations stay far below the file's size."""
    import tracemalloc

    from convo_warehouse.lib.landing import jsonl

    def write_gzip(name: str, lines: list[str]) -> None:
        with gzip.open(warehouse.landing / name, "wb") as handle:
            handle.write("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")

    monkeypatch.setattr(jsonl, "BATCH_LINES", 1_000)
    # a small file first, so the imports the fallback needs are not counted
    write_gzip("small.jsonl.gz", ['{"event_id": "\udcff"}'])
    warehouse.load()
    padding = "x" * 150
    lines = [
        json.dumps(event(f"s-{n}", f"c{n % 50}", "user_message", "2024-03-01T10:00:00Z", content=padding))
        for n in range(60_000)
    ]  # about 14 MB of text
    lines[10] = lines[10].replace(padding, "bad \udcff byte")  # not UTF-8: DuckDB's reader gives up
    write_gzip("big.jsonl.gz", lines)
    del lines

    tracemalloc.start()
    try:
        report = warehouse.load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.rows_loaded == 60_000 and report.unreadable_rows == 0
    assert peak < 5_000_000, f"Python held {peak:,} bytes at once"
    assert warehouse.query(
        "select row_number, event_id from raw.events where source_file = 'big.jsonl.gz' "
        "and row_number in (1, 11, 60000) order by 1"
    ) == [(1, "s-0"), (11, "s-10"), (60_000, "s-59999")]
    assert "\ufffd" in warehouse.scalar(
        "select properties from raw.events where source_file = 'big.jsonl.gz' and row_number = 11"
    )



# --------------------------------------------------------------------------- no file stops the run


def test_a_csv_field_of_200_kb_is_read(warehouse):
    transcript = "word " * 40_000  # 200 KB: Python's csv module stops at 128 KiB by default
    properties = json.dumps({"content": transcript}).replace('"', '""')
    (warehouse.landing / "long.csv").write_text(
        "event_id,conversation_id,event_type,timestamp,properties\n"
        f'long-1,c1,user_message,2024-03-01 10:00:00,"{properties}"\n'
        "long-2,c1,agent_message,2024-03-01 10:00:01,\n"
    )
    report = warehouse.load()
    warehouse.build(STAGED)
    assert report.unreadable_rows == 0
    assert warehouse.query("select event_id, length(content) from staging.stg_events order by 1") == [
        ("long-1", len(transcript)),
        ("long-2", None),
    ]


def test_an_error_while_mapping_one_otlp_line_quarantines_that_line(warehouse, monkeypatch):
    from convo_warehouse.lib import otel_genai

    real_mapping = otel_genai.map_export_request

    def mapping(request):
        if request.get("resourceSpans") == ["x"]:
            raise AttributeError("'str' object has no attribute 'get'")  # what such a line raised
        return real_mapping(request)

    monkeypatch.setattr(otel_genai, "map_export_request", mapping)
    (warehouse.landing / "traces.otlp.jsonl").write_text('{"resourceSpans": []}\n{"resourceSpans": ["x"]}\n')
    write_jsonl(warehouse.landing / "other.jsonl", [event("o-1", "c1", "user_message", "2024-03-01T10:00:00Z")])

    warehouse.load()
    warehouse.build(STAGED)

    assert warehouse.query(
        "select source_file, row_number, reason, reason_detail, raw_record from quarantine.rejected_events"
    ) == [("traces.otlp.jsonl", 1, "unreadable_line", "unreadable line 2: 'str' object has no attribute 'get'",
           '{"resourceSpans": ["x"]}')]  # fmt: skip
    assert warehouse.query("select event_id from staging.stg_events") == [("o-1",)]


def test_an_error_inside_a_reader_keeps_the_rows_read_and_the_run_goes_on(warehouse, monkeypatch):
    from convo_warehouse.lib.landing import csv_file

    real_rows = csv_file.CsvReader.rows

    def breaking_rows(self, path):
        rows = real_rows(self, path)
        yield next(rows)
        raise RuntimeError("the disk went away\nsecond line of the message")

    monkeypatch.setattr(csv_file.CsvReader, "rows", breaking_rows)
    (warehouse.landing / "broken.csv").write_text(
        "event_id,conversation_id,event_type,timestamp\n"
        "b-1,c1,user_message,2024-03-01 10:00:00\n"
        "b-2,c1,user_message,2024-03-01 10:00:01\n"
    )
    write_jsonl(warehouse.landing / "fine.jsonl", [event("f-1", "c1", "user_message", "2024-03-01T10:00:02Z")])

    report = warehouse.load()
    warehouse.build(STAGED)

    assert report.files_loaded == ["broken.csv", "fine.jsonl"]
    assert warehouse.query("select event_id from staging.stg_events order by 1") == [("b-1",), ("f-1",)]
    assert warehouse.query("select source_file, row_number, reason, reason_detail from quarantine.rejected_events") == [
        ("broken.csv", 0, "unreadable_file", "unreadable file: the disk went away"),
    ]
    assert warehouse.scalar("select bool_and(is_reconciled) from audit.reconciliation")


def test_a_file_that_cannot_be_opened_is_reported_once_and_loaded_when_it_can(warehouse, monkeypatch):
    from convo_warehouse.lib.landing import files

    write_jsonl(warehouse.landing / "locked.jsonl", [event("l-1", "c1", "user_message", "2024-03-01T10:00:00Z")])
    write_jsonl(warehouse.landing / "open.jsonl", [event("o-1", "c1", "user_message", "2024-03-01T10:00:01Z")])
    real_hash = files.content_hash

    def content_hash(path, check=None):
        if path.name == "locked.jsonl":
            raise PermissionError(13, "Permission denied", str(path))
        return real_hash(path, check)

    monkeypatch.setattr(files, "content_hash", content_hash)
    assert warehouse.load().files_loaded == ["locked.jsonl", "open.jsonl"]
    assert warehouse.load().files_loaded == []  # still locked: not reported twice
    assert warehouse.query("select source_file, row_number, parse_error from raw.events order by 1") == [
        ("locked.jsonl", 0, f"unreadable file: [Errno 13] Permission denied: '{warehouse.landing / 'locked.jsonl'}'"),
        ("open.jsonl", 1, None),
    ]
    monkeypatch.setattr(files, "content_hash", real_hash)  # readable again
    assert warehouse.load().files_loaded == ["locked.jsonl"]
    warehouse.build(STAGED)
    assert warehouse.query("select event_id from staging.stg_events order by 1") == [("l-1",), ("o-1",)]


def test_a_truncated_gzip_file_keeps_its_lines_and_is_reported(warehouse):
    data = gzip.compress(
        ("\n".join(json.dumps(event(f"t-{n}", "c1", "user_message", "2024-03-01T10:00:00Z")) for n in range(2000)) + "\n").encode()
    )
    (warehouse.landing / "cut.jsonl.gz").write_bytes(data[: len(data) * 2 // 3])  # the end of the stream is missing
    write_jsonl(warehouse.landing / "fine.jsonl", [event("f-1", "c2", "user_message", "2024-03-01T10:00:00Z")])

    report = warehouse.load()
    warehouse.build(STAGED)

    assert report.files_loaded == ["cut.jsonl.gz", "fine.jsonl"]
    kept = warehouse.scalar("select count(*) from raw.events where source_file = 'cut.jsonl.gz' and row_number > 0")
    assert 0 < kept < 2000
    reason, detail = warehouse.query(
        "select reason, reason_detail from quarantine.rejected_events where source_file = 'cut.jsonl.gz'"
    )[0]
    assert reason == "unreadable_file" and "unreadable file" in detail
    # every line read before the break is staged, but for a last line the break cut in two
    assert warehouse.scalar("select count(*) from staging.stg_events where source_file = 'cut.jsonl.gz'") >= kept - 1
    assert warehouse.scalar("select bool_and(is_reconciled) from audit.reconciliation")


# --------------------------------------------------------------------------- one parse per line


# Lines both ways of reading JSONL (and the Spark loader: make test-spark)
# must turn into the same raw rows. By line: 1 plain; 2 blank (no row, but
# counted); 3 identifiers as a number, boolean, null and object; 4 fields
# without a column (v1.1 names); 5 ASCII spaces (blank); 6 fractional epoch
# ms, double-encoded properties; 7 exponent epoch ms, a number as channel;
# 8 an object without fields (read; staging quarantines it); 9 Unicode spaces
# (blank); 10 malformed between braces; 11 truncated; 12 valid JSON, an
# array; 13 a string; 14 surrounding spaces; 15 escapes and a big number;
# 16 text after the object; 17 truncated (DuckDB's read_json would also fail
# the next line); 18 valid after a truncated line.
READER_CORPUS = (Path(__file__).resolve().parents[1] / "fixtures" / "landing" / "edge_lines.jsonl").read_text().split("\n")[:-1]


def test_jsonl_readers_agree_on_every_kind_of_line(tmp_path):
    """DuckDB reading the lines and the Python fallback streaming them give
    the same raw rows: blank lines, numbers, kinds, unreadable lines."""
    import duckdb

    from convo_warehouse.lib.landing import jsonl

    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(READER_CORPUS) + "\n")
    rows = {}
    for name, failure in (("duckdb", None), ("fallback", RuntimeError("DuckDB could not read it"))):
        con = duckdb.connect()
        jsonl.READER.stage(con, path, failure)
        rows[name] = con.execute("select * from _landing_rows order by row_number").fetchall()
        con.close()
    assert rows["duckdb"] == rows["fallback"]
    numbers = [row[0] for row in rows["duckdb"]]
    assert numbers == [1, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18]  # blank lines 2, 5 and 9 are no rows
    unreadable = {row[0]: row[-2] for row in rows["duckdb"] if row[-2] is not None}
    assert unreadable == {
        10: "unreadable line: not valid JSON",
        11: "unreadable line: not valid JSON",
        12: "unreadable line: JSON array, not an object",
        13: "unreadable line: JSON varchar, not an object",
        16: "unreadable line: not valid JSON",
        17: "unreadable line: not valid JSON",
    }


def test_typed_fields_keep_only_what_text_cannot_carry(warehouse):
    write_jsonl(
        warehouse.landing / "typed.jsonl",
        [
            event("plain", "c1", "user_message", "2024-03-01T10:00:00Z", content="hi"),  # nothing to keep
            {"event_id": 123, "conversation_id": "c1", "event_type": "user_message",
             "timestamp": "2024-03-01T10:00:01Z"},  # a number as identifier
            {"id": "m-1", "conversation_id": "c1", "event_type": "user_message",
             "timestamp": "2024-03-01T10:00:02Z", "metadata": {"turn": 2}},  # v1.1 names
            {"event_id": "n-4", "conversation_id": "c1", "user_id": None, "event_type": "user_message",
             "timestamp": "2024-03-01T10:00:03Z"},  # a contract field sent as null: nothing to keep
            {"event_id": "n-5", "conversation_id": "c1", "event_type": "user_message",
             "timestamp": "2024-03-01T10:00:04Z", "extra": None},  # another field, even null, is kept
        ],
    )  # fmt: skip
    warehouse.load()
    assert warehouse.query("select row_number, event_id, typed_fields from raw.events order by 1") == [
        (1, "plain", None),
        (2, "123", '{"event_id":123}'),
        (3, None, '{"id":"m-1","metadata":{"turn":2}}'),
        (4, "n-4", None),
        (5, "n-5", '{"extra":null}'),
    ]


def test_row_numbers_count_blank_lines_wherever_they_are(warehouse):
    lines = ["", " ", event("n-3", "c1", "user_message", "2024-03-01T10:00:00Z"), "\u2003",
             "{broken}", "", event("n-7", "c1", "user_message", "2024-03-01T10:00:01Z"), "\t"]  # fmt: skip
    write_jsonl(warehouse.landing / "gaps.jsonl", lines)
    warehouse.load()
    assert warehouse.query("select row_number, event_id, parse_error from raw.events order by 1") == [
        (3, "n-3", None),
        (5, None, "unreadable line: not valid JSON"),
        (7, "n-7", None),
    ]
