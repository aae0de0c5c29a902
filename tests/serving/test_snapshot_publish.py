"""Publishing the snapshot (lib/serving.py) on a small hand-made warehouse: what is served, the
layout (small tables in the DuckDB file, large ones as day-partitioned Parquet behind views),
day partitions shared between versions through the store, whole files as hard links, what changed
read from audit.partitions_rewritten,
the manifest, atomic switch, readers keep their version, a failed publish changes nothing,
no-op, pruning, BI readers, busy errors that name the holder, and `convo-warehouse export`."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from convo_warehouse.lib import serving
from convo_warehouse.lib.partition_history import read_partition_history
from convo_warehouse.lib.warehouse import WarehouseBusyError, busy_message, connect, lock_holders
from support.warehouse import open_warehouse

PUBLISHED_AT = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
# With this threshold every table of two rows or more is served from Parquet.
LARGE = 2
BUILT_AT = dt.datetime(2026, 11, 20, 7, 0)


def _clock(start: dt.datetime = PUBLISHED_AT):
    moments = iter(start + dt.timedelta(minutes=minute) for minute in range(1000))
    return lambda: next(moments)


def _make_warehouse(path: Path) -> None:
    con = open_warehouse(path)
    con.execute(
        """
        create schema marts; create schema audit; create schema quarantine; create schema staging;
        create table marts.fct_conversations as
            select * from (values
                ('c1', date '2026-11-18', timestamp '2026-11-18 10:00:00', 0.25),
                ('c2', date '2026-11-19', timestamp '2026-11-19 23:30:00', 0.5),
                ('c3', date '2026-11-19', timestamp '2026-11-19 23:45:00', 0.75)
            ) as t(conversation_id, conversation_date, last_event_at, score);
        create table marts.metrics_daily as
            select * from (values
                (date '2026-11-18', 'conversations', 'all', 'all', 1.0),
                (date '2026-11-19', 'conversations', 'all', 'all', 1.0),
                (date '2026-11-19', 'completion_rate', 'all', 'all', 0.5)
            ) as t(metric_date, metric_name, segment_type, segment_value, value);
        -- partitioned by the day of metric_hour: it has no date column
        create table marts.metrics_hourly as
            select * from (values
                (timestamp '2026-11-18 10:00:00', 'conversations', 1),
                (timestamp '2026-11-19 23:00:00', 'conversations', 2)
            ) as t(metric_hour, metric_name, value);
        -- no day column: one Parquet file even when large
        create table marts.fct_messages as
            select * from (values
                ('c1', 1, 'hello'), ('c1', 2, 'it''s me'), ('c2', 1, 'hi')
            ) as t(conversation_id, message_order, content);
        create view marts.conversations_per_day as
            select metric_date, value from marts.metrics_daily where metric_name = 'conversations';
        create table audit.reconciliation as select 1 as load_id, 10 as raw_rows;
        -- raw_text may hold personal data: it must not be published
        create table quarantine.rejected_events as
            select 1 as load_id, 'a.jsonl' as source_file, 3 as row_number, 'unreadable_line' as reason,
                   'not JSON' as reason_detail, 'call me at +44 20 7946 0958' as raw_text;
        create table staging.stg_events as select 'internal' as note;
        """
    )
    con.close()


@pytest.fixture
def setup(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    _make_warehouse(database)
    return database, tmp_path / "serving"


def _publish(database: Path, serving_dir: Path, **kwargs) -> serving.PublishResult:
    con = open_warehouse(database)
    try:
        kwargs.setdefault("now", _clock())
        return serving.publish(con, serving_dir, run_id="run-1", tests={"status": "passed"}, **kwargs)
    finally:
        con.close()


def _later(hours: int) -> dict:
    return {"now": _clock(PUBLISHED_AT + dt.timedelta(hours=hours))}


def _sql(database: Path, sql: str, params: list | None = None) -> None:
    con = open_warehouse(database)
    try:
        con.execute(sql, params or [])
    finally:
        con.close()


def _add_day(database: Path, day: str) -> None:
    _sql(database, f"insert into marts.metrics_daily values (date '{day}', 'conversations', 'all', 'all', 7.0)")


def _add_conversation(database: Path, conversation_id: str, day: str | None) -> None:
    _sql(database, "insert into marts.fct_conversations values (?, ?, timestamp '2026-11-19 12:00:00', 0.1)",
         [conversation_id, day])


def _record(database: Path, rows: list[tuple]) -> None:
    """Rows of audit.partitions_rewritten as the incremental materialization writes them."""
    _sql(database, "create table if not exists audit.partitions_rewritten "
                   "(relation_name varchar, partition_date date, rewrote_all boolean, recorded_at timestamp)")
    con = open_warehouse(database)
    try:
        con.executemany("insert into audit.partitions_rewritten values (?, ?, ?, ?)", rows)
    finally:
        con.close()


def _tree_digest(folder: Path) -> dict[str, str]:
    """Every file and link under ``folder`` with its content hash (links: their target)."""
    digest = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            digest[key] = "-> " + str(path.readlink())
        elif path.is_file():
            digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def _files(folder: Path) -> dict[str, os.stat_result]:
    """Every file under ``folder`` as a reader sees it: through a version's links to the store's day folders."""
    found = {}
    for root, _, names in os.walk(folder, followlinks=True):
        for name in names:
            path = Path(root) / name
            found[str(path.relative_to(folder))] = path.stat()
    return dict(sorted(found.items()))


def _content(con: duckdb.DuckDBPyConnection, table: str, columns: str = "*") -> list[tuple]:
    return sorted(con.execute(f"select {columns} from {table}").fetchall(), key=repr)


def _served_columns(table: str) -> str:
    return serving.SERVED_EXTRA_TABLES.get(table, "*")


def _assert_snapshot_equals_warehouse(database: Path, snapshot: serving.Snapshot) -> None:
    """Every served table of the snapshot has the warehouse's columns, types and rows."""
    warehouse = duckdb.connect(str(database), read_only=True)
    reader = snapshot.connect()
    try:
        for table in snapshot.tables:
            columns = _served_columns(table)
            expected_types = warehouse.execute(f"describe select {columns} from {table}").fetchall()
            assert [row[:2] for row in reader.execute(f"describe {table}").fetchall()] == [row[:2] for row in expected_types], table
            assert _content(reader, table) == _content(warehouse, table, columns), table
    finally:
        reader.close()
        warehouse.close()


# ---------------------------------------------------------------------------
# What is published, and how it is laid out
# ---------------------------------------------------------------------------


def test_publish_writes_duckdb_parquet_and_manifest(setup):
    database, serving_dir = setup
    result = _publish(database, serving_dir)

    snapshot = serving.current_snapshot(serving_dir)
    assert result.created and snapshot.version == result.snapshot.version
    assert snapshot.folder == serving_dir / "versions" / snapshot.version
    assert sorted(snapshot.tables) == [
        "audit.reconciliation",
        "marts.conversations_per_day",
        "marts.fct_conversations",
        "marts.fct_messages",
        "marts.metrics_daily",
        "marts.metrics_hourly",
        "quarantine.rejected_events",
    ]
    manifest = json.loads((serving_dir / "current" / "manifest.json").read_text())
    assert manifest["run_id"] == "run-1"
    assert manifest["published_at"] == PUBLISHED_AT.isoformat()
    assert manifest["newest_event_at"] == "2026-11-19T23:45:00"
    assert manifest["tests"] == {"status": "passed"}
    assert manifest["tables"]["marts.metrics_daily"]["rows"] == 3
    assert manifest["tables"]["marts.conversations_per_day"]["rows"] == 2
    # Small tables (all of them, below the default threshold) are held in the DuckDB file.
    assert {entry["storage"] for entry in manifest["tables"].values()} == {"duckdb"}
    assert manifest["changes"]["previous_version"] is None
    assert {change["change"] for change in manifest["changes"]["tables"].values()} == {"added"}
    # The DuckDB file has the same schema.table names as the warehouse.
    con = snapshot.connect()
    try:
        assert con.execute("select sum(value) from marts.metrics_daily").fetchone()[0] == 2.5
        columns = [row[0] for row in con.execute("describe quarantine.rejected_events").fetchall()]
        assert "raw_text" not in columns and "reason" in columns
        assert con.execute("select count(*) from information_schema.tables where table_schema = 'staging'").fetchone()[0] == 0
        assert con.execute("select count(*) from information_schema.tables where table_type = 'VIEW'").fetchone()[0] == 0
    finally:
        con.close()
    # Parquet for every table: one file without a day column, else a folder per day.
    assert snapshot.parquet("fct_messages").name == "marts.fct_messages.parquet"
    assert sorted(pq.read_table(snapshot.parquet("fct_messages")).column("content").to_pylist()) == [
        "hello", "hi", "it's me"
    ]
    assert snapshot.parquet("metrics_daily").name == "marts.metrics_daily"
    parquet = ds.dataset(snapshot.parquet("metrics_daily"), format="parquet", partitioning="hive").to_table()
    assert parquet.num_rows == 3
    assert sorted(parquet.column("value").to_pylist()) == [0.5, 1.0, 1.0]
    _assert_snapshot_equals_warehouse(database, snapshot)


def test_a_served_table_is_read_from_the_relation_serving_names(setup):
    """quarantine.rejected_events is served from quarantine.rejected_event_reasons (SERVED_FROM):
    rejected_events itself, which joins every rejected row to raw.events, is not read."""
    database, serving_dir = setup
    con = open_warehouse(database)
    try:
        con.execute("alter table quarantine.rejected_events rename to rejected_rows")
        con.execute(
            "create view quarantine.rejected_event_reasons as select load_id, source_file, row_number, reason, "
            "reason_detail from quarantine.rejected_rows"
        )
        # the columns of the served table, but reading it fails
        con.execute(
            "create view quarantine.rejected_events as select *, error('read rejected_events') as raw_text "
            "from quarantine.rejected_event_reasons"
        )
    finally:
        con.close()
    snapshot = _publish(database, serving_dir).snapshot
    assert snapshot.tables["quarantine.rejected_events"]["rows"] == 1
    with contextlib.closing(snapshot.connect()) as reader:
        assert reader.execute("select reason, reason_detail from quarantine.rejected_events").fetchall() == [
            ("unreadable_line", "not JSON")
        ]


def test_large_tables_are_served_from_parquet_partitioned_by_day(setup):
    database, serving_dir = setup
    _add_conversation(database, "c-undated", None)  # a row without a day: its own partition
    snapshot = _publish(database, serving_dir, large=LARGE).snapshot
    tables = snapshot.tables

    conversations = tables["marts.fct_conversations"]
    assert (conversations["storage"], conversations["partition_by"]) == ("parquet", "conversation_date")
    assert conversations["parquet"] == "parquet/marts.fct_conversations"
    assert sorted(conversations["partitions"]) == ["2026-11-18", "2026-11-19", "__HIVE_DEFAULT_PARTITION__"]
    assert conversations["partitions"]["2026-11-19"]["rows"] == 2
    assert conversations["partitions"]["2026-11-19"]["files"] == [
        "parquet/marts.fct_conversations/conversation_date=2026-11-19/part0.parquet"
    ]
    assert (snapshot.folder / "parquet/marts.fct_conversations/conversation_date=2026-11-18/part0.parquet").is_file()
    assert tables["marts.metrics_daily"]["partition_by"] == "metric_date"
    # No date column, but a timestamp: partitioned by its day (a key of its own, not a column of the table).
    assert tables["marts.metrics_hourly"]["partition_by"] == "metric_hour_date"
    assert sorted(tables["marts.metrics_hourly"]["partitions"]) == ["2026-11-18", "2026-11-19"]
    # No day column at all: one file, still read through a view.
    messages = tables["marts.fct_messages"]
    assert (messages["storage"], messages["partition_by"], messages["parquet"]) == (
        "parquet", None, "parquet/marts.fct_messages.parquet"
    )
    # One row: below the threshold, held in the DuckDB file.
    assert tables["audit.reconciliation"]["storage"] == "duckdb"

    con = snapshot.connect()
    try:
        kinds = dict(con.execute(
            "select table_schema || '.' || table_name, table_type from information_schema.tables"
        ).fetchall())
        views = con.execute("select sql from duckdb_views() where not internal").fetchall()
    finally:
        con.close()
    assert kinds["marts.fct_conversations"] == "VIEW" and kinds["marts.fct_messages"] == "VIEW"
    assert kinds["audit.reconciliation"] == "BASE TABLE"
    # The views read this version's own files, by absolute path.
    assert all(str(snapshot.folder / "parquet") in sql for (sql,) in views)
    # Same columns, types (the day comes back a DATE) and rows as the warehouse, table by table.
    _assert_snapshot_equals_warehouse(database, snapshot)


def test_a_table_of_few_but_long_rows_is_served_from_parquet_once_its_file_is_wide(setup):
    """serving._wide: a table without a day column, far below the row threshold, whose Parquet file
    reached WIDE_FILE_BYTES is served from Parquet from the next version on (the DuckDB file would
    take its long rows whole at each change), and stays so; a narrow one stays in the DuckDB file."""
    database, serving_dir = setup
    # 1,000 rows of 1 KiB of hex digests: about half a megabyte of Parquet, which zstd cannot shrink much
    _sql(database, """
        create table marts.long_paths as
            select i as path_rank, (select string_agg(md5(i::varchar || '-' || j::varchar), '') from range(32) t(j)) as path
            from range(1000) r(i)""")
    kinds = []
    for hour in range(3):
        _sql(database, "update marts.long_paths set path_rank = path_rank + 1")
        snapshot = _publish(database, serving_dir, **_later(hour)).snapshot
        kinds.append((snapshot.tables["marts.long_paths"]["storage"], snapshot.tables["audit.reconciliation"]["storage"]))
        _assert_snapshot_equals_warehouse(database, snapshot)
    assert (snapshot.folder / "parquet/marts.long_paths.parquet").stat().st_size >= serving.WIDE_FILE_BYTES
    assert kinds == [("duckdb", "duckdb"), ("parquet", "duckdb"), ("parquet", "duckdb")]
    con = snapshot.connect()
    try:
        assert con.execute("select table_type from information_schema.tables where table_name = 'long_paths'"
                           ).fetchall() == [("VIEW",)]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("change", "sql", "day"),
    [
        ("a new day", "insert into marts.fct_conversations values "
                      "('c4', date '2026-11-20', timestamp '2026-11-20 09:00:00', 0.1)", "2026-11-20"),
        ("a changed day", "update marts.fct_conversations set score = 0.9 where conversation_id = 'c2'", "2026-11-19"),
        ("a removed day", "delete from marts.fct_conversations where conversation_date = date '2026-11-18'", "2026-11-18"),
    ],
)
def test_a_small_table_with_a_day_column_writes_only_its_changed_day(setup, change, sql, day):
    """Below the threshold a table is held in the DuckDB file, and still partitioned by day in
    Parquet: a changed day is the only partition written."""
    database, serving_dir = setup
    first = _publish(database, serving_dir).snapshot
    conversations = first.tables["marts.fct_conversations"]
    assert (conversations["storage"], conversations["partition_by"]) == ("duckdb", "conversation_date")
    _sql(database, sql)
    second = _publish(database, serving_dir, **_later(1)).snapshot
    entry = second.manifest["changes"]["tables"]["marts.fct_conversations"]
    assert entry["change"] == "updated", change
    assert entry["partitions_rewritten"] + entry["partitions_removed"] == [day]
    _assert_snapshot_equals_warehouse(database, second)


def test_parquet_readers_read_the_day_partitions(setup):
    database, serving_dir = setup
    snapshot = _publish(database, serving_dir, large=LARGE).snapshot
    folder = snapshot.parquet("fct_conversations")
    assert folder.is_dir()
    # The documented way: a hive-partitioned dataset, the day typed as a date.
    dataset = ds.dataset(folder, format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert table.num_rows == 3
    assert sorted(table.column("conversation_id").to_pylist()) == ["c1", "c2", "c3"]
    assert sorted(str(day) for day in table.column("conversation_date").to_pylist()) == [
        "2026-11-18", "2026-11-19", "2026-11-19"
    ]


_READ_EVERY_TABLE = textwrap.dedent(
    """
    import json, sys, duckdb
    path, tables = sys.argv[1], json.loads(sys.argv[2])
    direct = duckdb.connect(path, read_only=True)
    attached = duckdb.connect()
    attached.execute("attach '" + path.replace("'", "''") + "' as snapshot (read_only)")
    counts = {
        table: [
            direct.execute(f"select count(*) from {table}").fetchone()[0],
            attached.execute(f"select count(*) from snapshot.{table}").fetchone()[0],
        ]
        for table in tables
    }
    print(json.dumps(counts))
    """
)


def test_readers_in_another_process_and_folder_read_every_table(setup, tmp_path):
    """A reader elsewhere (another working directory), opening the file or ATTACHing it read-only."""
    database, serving_dir = setup
    snapshot = _publish(database, serving_dir, large=LARGE).snapshot
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _READ_EVERY_TABLE, str(serving_dir / "current" / "warehouse.duckdb"),
         json.dumps(sorted(snapshot.tables))],
        cwd=elsewhere, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert counts == {table: [entry["rows"]] * 2 for table, entry in snapshot.tables.items()}


def test_relative_parquet_paths_would_follow_the_readers_folder(tmp_path, monkeypatch):
    """Why the views name their files by absolute path: DuckDB resolves a relative path in a view
    against the reading process's working directory, not against the DuckDB file's folder."""
    folder = tmp_path / "version"
    folder.mkdir()
    monkeypatch.chdir(folder)  # the relative view binds (reads the file) when it is created
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    con.execute("copy (select 1 as x) to 'x.parquet' (format parquet)")
    con.execute("create view relative_view as select * from read_parquet('x.parquet')")
    con.execute(f"create view absolute_view as select * from read_parquet({serving.literal(folder / 'x.parquet')})")
    con.close()
    script = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(con.execute('select count(*) from absolute_view').fetchone()[0]); "
        "print(con.execute('select count(*) from relative_view').fetchone()[0])"
    )
    elsewhere = subprocess.run([sys.executable, "-c", script, str(folder / "warehouse.duckdb")],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert elsewhere.stdout.split() == ["1"] and "No files found" in elsewhere.stderr
    inside = subprocess.run([sys.executable, "-c", script, str(folder / "warehouse.duckdb")],
                            cwd=folder, capture_output=True, text=True, timeout=60)
    assert inside.stdout.split() == ["1", "1"]


# ---------------------------------------------------------------------------
# A new version reuses what did not change
# ---------------------------------------------------------------------------


def test_unchanged_partitions_are_shared_and_files_linked(setup):
    """A day partition that did not change is the previous version's, in the store (the version links its
    day folder there); a table stored as one file is a hard link of the previous version's."""
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=LARGE).snapshot
    _add_conversation(database, "c4", "2026-11-20")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot

    before, after = _files(first.folder / "parquet"), _files(second.folder / "parquet")
    new = "marts.fct_conversations/conversation_date=2026-11-20/part0.parquet"
    assert set(after) == set(before) | {new}
    for name, stat in before.items():
        assert after[name].st_ino == stat.st_ino, name  # the same file
        one_file = name.endswith(".parquet") and "/" not in name
        assert after[name].st_nlink == (2 if one_file else 1), name  # two names, or one name in the store
    assert after[new].st_nlink == 1
    day = second.folder / "parquet/marts.fct_conversations/conversation_date=2026-11-18"
    assert day.is_symlink() and not Path(os.readlink(day)).is_absolute()
    assert day.resolve() == (first.folder / "parquet/marts.fct_conversations/conversation_date=2026-11-18").resolve()
    assert day.resolve().parent.parent.parent == (serving_dir / "partitions").resolve()
    entry = second.tables["marts.fct_conversations"]["partitions"]
    assert entry["2026-11-18"]["folder"] == first.tables["marts.fct_conversations"]["partitions"]["2026-11-18"]["folder"]
    assert entry["2026-11-20"]["folder"] == f"partitions/marts.fct_conversations/{second.version}/conversation_date=2026-11-20"

    changes = second.manifest["changes"]
    assert changes["previous_version"] == first.version
    assert changes["files"] == {"written": 1, "linked": len(before), "copied": 0}
    conversations = changes["tables"]["marts.fct_conversations"]
    assert conversations["change"] == "updated"
    assert (conversations["rows"], conversations["rows_before"]) == (4, 3)
    assert conversations["partitions_rewritten"] == ["2026-11-20"]
    assert (conversations["partitions_reused"], conversations["partitions_removed"]) == (2, [])
    assert {table: change["change"] for table, change in changes["tables"].items() if table != "marts.fct_conversations"} == {
        "audit.reconciliation": "reused",
        "marts.conversations_per_day": "reused",
        "marts.fct_messages": "reused",
        "marts.metrics_daily": "reused",
        "marts.metrics_hourly": "reused",
        "quarantine.rejected_events": "reused",
    }
    _assert_snapshot_equals_warehouse(database, second)


def test_a_store_folder_gone_is_written_again_not_linked(setup):
    """A day folder of the store deleted by hand: the next version writes that day again instead of
    linking to nothing (its views would silently miss the day's rows)."""
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=LARGE).snapshot
    gone = first.tables["marts.fct_conversations"]["partitions"]["2026-11-18"]["folder"]
    shutil.rmtree(serving_dir / gone)
    _add_day(database, "2026-11-20")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    conversations = second.manifest["changes"]["tables"]["marts.fct_conversations"]
    assert conversations["partitions_rewritten"] == ["2026-11-18"]
    assert second.tables["marts.fct_conversations"]["partitions"]["2026-11-18"]["folder"] != gone
    _assert_snapshot_equals_warehouse(database, second)


def test_a_version_before_the_store_has_its_partitions_written_once(setup):
    """A version published before the store (its partitions in its own folder, no ``folder`` in its
    manifest) shares nothing: the next version writes every partition, and the one after shares them."""
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=LARGE).snapshot
    manifest = json.loads((first.folder / "manifest.json").read_text())
    for entry in manifest["tables"].values():
        for partition in entry.get("partitions", {}).values():
            del partition["folder"]
    del manifest["file_mode"]
    (first.folder / "manifest.json").write_text(json.dumps(manifest))
    _add_day(database, "2026-11-20")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    files = second.manifest["changes"]["files"]
    one_file = sum(entry["partition_by"] is None for entry in second.tables.values())
    # only the tables stored as one file are reused, as copies: that version records no file mode
    assert files["linked"] == 0 and files["copied"] == one_file
    assert files["written"] == len(_files(second.folder / "parquet")) - one_file
    _add_day(database, "2026-11-21")
    third = _publish(database, serving_dir, large=LARGE, **_later(2)).snapshot
    assert third.manifest["changes"]["files"]["written"] == 2  # the new day, in metrics_daily and the view over it
    _assert_snapshot_equals_warehouse(database, third)


def test_a_removed_day_and_a_removed_table_are_named(setup):
    database, serving_dir = setup
    _publish(database, serving_dir, large=LARGE)
    _sql(database, "delete from marts.fct_conversations where conversation_date = date '2026-11-18'")
    _sql(database, "drop table marts.metrics_hourly")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    changes = second.manifest["changes"]
    assert changes["removed_tables"] == ["marts.metrics_hourly"]
    conversations = changes["tables"]["marts.fct_conversations"]
    assert (conversations["change"], conversations["partitions_removed"]) == ("updated", ["2026-11-18"])
    assert conversations["partitions_rewritten"] == []
    assert not (second.folder / "parquet/marts.fct_conversations/conversation_date=2026-11-18").exists()
    _assert_snapshot_equals_warehouse(database, second)


def test_files_are_copied_where_links_are_refused(setup, monkeypatch):
    """A table stored as one file is copied where the file system refuses a hard link; day partitions
    are shared through the store, which needs no hard link."""
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=LARGE).snapshot

    def refuse(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link (simulated)", str(target))

    monkeypatch.setattr(serving.os, "link", refuse)
    _add_day(database, "2026-11-20")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    before, after = _files(first.folder / "parquet"), _files(second.folder / "parquet")
    # A new day of metrics_daily (and of the view over it) is written; every earlier file is reused.
    assert sorted(set(after) - set(before)) == [
        "marts.conversations_per_day/metric_date=2026-11-20/part0.parquet",
        "marts.metrics_daily/metric_date=2026-11-20/part0.parquet",
    ]
    one_file = [name for name in before if "/" not in name]
    assert one_file
    for name in before:
        assert (after[name].st_ino != before[name].st_ino) == (name in one_file), name
        assert (second.folder / "parquet" / name).read_bytes() == (first.folder / "parquet" / name).read_bytes()
    assert second.manifest["changes"]["files"] == {
        "written": 2, "linked": len(before) - len(one_file), "copied": len(one_file)
    }
    _assert_snapshot_equals_warehouse(database, second)


def test_a_table_whose_columns_change_is_rewritten(setup):
    database, serving_dir = setup
    _publish(database, serving_dir, large=LARGE)
    _sql(database, "alter table marts.fct_conversations add column channel varchar default 'web'")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    change = second.manifest["changes"]["tables"]["marts.fct_conversations"]
    assert change["change"] == "rewritten"
    assert change["partitions_rewritten"] == ["2026-11-18", "2026-11-19"]
    assert "layout or columns" in change["known_from"]
    _assert_snapshot_equals_warehouse(database, second)


def test_a_table_served_from_parquet_stays_so_while_it_has_rows(setup):
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=3).snapshot
    assert first.tables["marts.fct_conversations"]["storage"] == "parquet"  # 3 rows
    _sql(database, "delete from marts.fct_conversations where conversation_id = 'c3'")
    second = _publish(database, serving_dir, large=3, **_later(1)).snapshot
    assert second.tables["marts.fct_conversations"]["storage"] == "parquet"  # 2 rows, no flip to the DuckDB file
    assert second.manifest["changes"]["tables"]["marts.fct_conversations"]["partitions_rewritten"] == ["2026-11-19"]
    _sql(database, "delete from marts.fct_conversations")
    third = _publish(database, serving_dir, large=3, **_later(2)).snapshot
    # No rows, no files to read: held in the DuckDB file.
    assert third.tables["marts.fct_conversations"]["storage"] == "duckdb"
    _assert_snapshot_equals_warehouse(database, third)


# ---------------------------------------------------------------------------
# What changed, from audit.partitions_rewritten
# ---------------------------------------------------------------------------


def test_partition_history_reads_what_was_rewritten_since_a_moment(setup):
    database, _serving_dir = setup
    con = open_warehouse(database)
    try:
        missing = read_partition_history(con, since=BUILT_AT)
        assert not missing.available and missing.reason == "audit.partitions_rewritten does not exist"
        assert missing.rewrites_of("marts.fct_conversations") is None
    finally:
        con.close()
    _record(database, [
        ("marts.fct_conversations", None, True, BUILT_AT),
        ("marts.metrics_daily", dt.date(2026, 11, 18), False, BUILT_AT),
        ("marts.fct_conversations", dt.date(2026, 11, 19), False, BUILT_AT + dt.timedelta(hours=1)),
        ("marts.fct_conversations", dt.date(2026, 11, 20), False, BUILT_AT + dt.timedelta(hours=2)),
        ("marts.fct_messages", None, True, BUILT_AT + dt.timedelta(hours=2)),
    ])
    con = open_warehouse(database)
    try:
        history = read_partition_history(con, since=BUILT_AT)
        assert history.newest_recorded_at == BUILT_AT + dt.timedelta(hours=2)
        recorded = history.rewrites_of("marts.fct_conversations")
        assert (recorded.rewrote_all, recorded.days) == (False, {dt.date(2026, 11, 19), dt.date(2026, 11, 20)})
        assert history.rewrites_of("marts.fct_messages").rewrote_all  # a null partition_date: all of it
        nothing = history.rewrites_of("marts.metrics_daily")  # tracked, nothing since
        assert (nothing.rewrote_all, nothing.days) == (False, frozenset())
        assert history.rewrites_of("marts.metrics_hourly") is None  # never recorded: not incremental
        assert "no rows in audit.partitions_rewritten" in history.why_unknown("marts.metrics_hourly")
        assert read_partition_history(con, since=None).rewrites_of("marts.fct_conversations") is None
        con.execute("alter table audit.partitions_rewritten drop column rewrote_all")
        broken = read_partition_history(con, since=BUILT_AT)
        assert not broken.available and "rewrote_all BOOLEAN" in broken.reason
    finally:
        con.close()


def test_only_the_recorded_days_are_read_and_written(setup):
    database, serving_dir = setup
    _record(database, [("marts.fct_conversations", None, True, BUILT_AT)])
    first = _publish(database, serving_dir, large=LARGE).snapshot
    assert first.manifest["partitions_recorded_until"] == BUILT_AT.isoformat()

    # The next build adds a day and records it...
    _add_conversation(database, "c4", "2026-11-20")
    _record(database, [("marts.fct_conversations", dt.date(2026, 11, 20), False, BUILT_AT + dt.timedelta(hours=1))])
    # ...and this change is *not* recorded (the materialization never does that; it shows
    # which days the publish reads): same row count, another score on 2026-11-18.
    _sql(database, "update marts.fct_conversations set score = 0.99 where conversation_id = 'c1'")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot

    assert second.manifest["partitions_recorded_until"] == (BUILT_AT + dt.timedelta(hours=1)).isoformat()
    change = second.manifest["changes"]["tables"]["marts.fct_conversations"]
    assert change["partitions_rewritten"] == ["2026-11-20"]
    assert change["known_from"] == f"audit.partitions_rewritten after {BUILT_AT.isoformat()}"
    con = second.connect()
    try:
        assert con.execute("select score from marts.fct_conversations where conversation_id = 'c1'").fetchone()[0] == 0.25
        assert con.execute("select count(*) from marts.fct_conversations").fetchone()[0] == 4
    finally:
        con.close()
    # Tables the history does not track are compared by content.
    assert second.manifest["changes"]["tables"]["marts.metrics_daily"]["known_from"].startswith("content: ")


def test_rows_the_history_does_not_explain_mean_comparing_every_partition(setup):
    database, serving_dir = setup
    _record(database, [("marts.fct_conversations", None, True, BUILT_AT)])
    _publish(database, serving_dir, large=LARGE)
    # A row arrived in a day nothing recorded: the row count gives it away.
    _add_conversation(database, "c4", "2026-11-18")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    change = second.manifest["changes"]["tables"]["marts.fct_conversations"]
    assert change["known_from"] == "content: the row count disagreed with audit.partitions_rewritten"
    assert change["partitions_rewritten"] == ["2026-11-18"]
    _assert_snapshot_equals_warehouse(database, second)


def test_a_whole_rewrite_compares_every_partition_and_writes_only_the_changed(setup):
    database, serving_dir = setup
    _record(database, [("marts.fct_conversations", None, True, BUILT_AT)])
    _publish(database, serving_dir, large=LARGE)
    _sql(database, "update marts.fct_conversations set score = 0.99 where conversation_id = 'c2'")
    _record(database, [("marts.fct_conversations", None, True, BUILT_AT + dt.timedelta(hours=1))])
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    change = second.manifest["changes"]["tables"]["marts.fct_conversations"]
    assert change["known_from"] == "content: marts.fct_conversations was rewritten whole"
    assert (change["partitions_rewritten"], change["partitions_reused"]) == (["2026-11-19"], 1)
    _assert_snapshot_equals_warehouse(database, second)


def test_without_the_history_table_every_table_is_compared_by_content(setup):
    database, serving_dir = setup
    _publish(database, serving_dir, large=LARGE)
    _add_conversation(database, "c4", "2026-11-19")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    changes = second.manifest["changes"]
    assert changes["history"] == "audit.partitions_rewritten does not exist"
    assert second.manifest["partitions_recorded_until"] is None
    change = changes["tables"]["marts.fct_conversations"]
    assert change["known_from"] == "content: audit.partitions_rewritten does not exist"
    assert (change["partitions_rewritten"], change["partitions_reused"]) == (["2026-11-19"], 1)
    _assert_snapshot_equals_warehouse(database, second)


def test_a_table_without_a_day_column_is_compared_by_content_even_when_tracked(setup):
    """The history names days: a table the publisher writes as one file, without a day column
    (fct_messages), cannot take its changes from it, so no row in the history is no proof of no change."""
    database, serving_dir = setup
    _record(database, [("marts.fct_messages", None, True, BUILT_AT)])  # the full build
    _publish(database, serving_dir, large=LARGE)
    # An incremental build replaced a conversation's messages: same row count, nothing recorded.
    _sql(database, "update marts.fct_messages set content = 'hello again' "
                   "where conversation_id = 'c1' and message_order = 1")
    second = _publish(database, serving_dir, large=LARGE, **_later(1))
    assert second.created
    change = second.snapshot.manifest["changes"]["tables"]["marts.fct_messages"]
    assert (change["change"], change["known_from"]) == (
        "rewritten", "content: audit.partitions_rewritten names days, and marts.fct_messages is one file",
    )
    _assert_snapshot_equals_warehouse(database, second.snapshot)


def test_a_recorded_rewrite_of_the_same_rows_publishes_nothing(setup):
    database, serving_dir = setup
    _record(database, [("marts.fct_conversations", None, True, BUILT_AT)])
    first = _publish(database, serving_dir, large=LARGE)
    before = _tree_digest(serving_dir)
    _record(database, [("marts.fct_conversations", dt.date(2026, 11, 19), False, BUILT_AT + dt.timedelta(hours=1))])
    again = _publish(database, serving_dir, large=LARGE, **_later(1))
    assert not again.created and again.snapshot.version == first.snapshot.version
    assert _tree_digest(serving_dir) == before


# ---------------------------------------------------------------------------
# Readers, failures, no-op, pruning
# ---------------------------------------------------------------------------


def test_reader_opened_before_a_publish_keeps_its_version_until_it_closes(setup):
    database, serving_dir = setup
    first = _publish(database, serving_dir, keep=1, large=LARGE).snapshot
    # A reader opens the snapshot as a BI tool does: through the stable `current` path.
    reader = duckdb.connect(str(serving_dir / "current" / "warehouse.duckdb"), read_only=True)
    try:
        before = {table: _content(reader, table) for table in first.tables}
        _add_day(database, "2026-11-20")
        _add_conversation(database, "c4", "2026-11-20")
        second = _publish(database, serving_dir, keep=1, large=LARGE, **_later(1))
        assert second.created
        # keep=1, but the reader holds the old version open: its views read that version's
        # Parquet files, so it is kept, and it keeps reading what it read.
        assert (second.pruned, second.held) == ([], [first.version])
        assert {table: _content(reader, table) for table in first.tables} == before
        assert reader.execute("select count(*), sum(value) from marts.metrics_daily").fetchall() == [(3, 2.5)]
    finally:
        reader.close()
    fresh = serving.current_snapshot(serving_dir).connect()
    try:
        assert fresh.execute("select count(*), sum(value) from marts.metrics_daily").fetchall() == [(4, 9.5)]
    finally:
        fresh.close()
    # Closed: the next publish prunes it.
    _add_day(database, "2026-11-21")
    third = _publish(database, serving_dir, keep=1, large=LARGE, **_later(2))
    assert third.pruned == [first.version, second.snapshot.version] and third.held == []
    assert serving.list_versions(serving_dir) == [third.snapshot.version]
    _assert_snapshot_equals_warehouse(database, third.snapshot)


def test_a_version_held_by_another_process_is_not_pruned(setup, holder):
    database, serving_dir = setup
    first = _publish(database, serving_dir, keep=1, large=LARGE).snapshot
    process = holder(first.database, "read")
    assert [holder.pid for holder in lock_holders(first.database)] == [process.pid]
    _add_day(database, "2026-11-20")
    second = _publish(database, serving_dir, keep=1, large=LARGE, **_later(1))
    assert (second.pruned, second.held) == ([], [first.version])
    assert serving.list_versions(serving_dir) == [first.version, second.snapshot.version]
    # A later publish prunes the second version and collects the store: the held one's partitions stay.
    _sql(database, "update marts.metrics_daily set value = 2.0 where metric_date = date '2026-11-18'")
    third = _publish(database, serving_dir, keep=1, large=LARGE, **_later(2))
    assert (third.pruned, third.held) == ([second.snapshot.version], [first.version])
    reader = first.connect()
    try:
        assert reader.execute("select sum(value) from marts.metrics_daily").fetchone()[0] == 2.5  # first's rows
    finally:
        reader.close()


def test_pruning_never_breaks_a_file_a_kept_version_links_to(setup):
    database, serving_dir = setup
    first = _publish(database, serving_dir, keep=1, large=LARGE).snapshot
    shared = first.folder / "parquet/marts.fct_conversations/conversation_date=2026-11-18/part0.parquet"
    content = shared.read_bytes()
    _add_day(database, "2026-11-20")
    second = _publish(database, serving_dir, keep=1, large=LARGE, **_later(1))
    assert second.pruned == [first.version] and not first.folder.exists()
    kept = second.snapshot.folder / "parquet/marts.fct_conversations/conversation_date=2026-11-18/part0.parquet"
    assert kept.read_bytes() == content and kept.stat().st_nlink == 1
    _assert_snapshot_equals_warehouse(database, second.snapshot)


def test_pruning_deletes_the_partitions_no_version_names(setup):
    """A day partition of the store goes with the last version that names it, and so do the folders it
    leaves empty; a partition a kept version names stays, and so does one a version held open names."""
    database, serving_dir = setup
    first = _publish(database, serving_dir, keep=1, large=LARGE).snapshot
    _sql(database, "update marts.fct_conversations set score = 0.9 where conversation_id = 'c1'")  # 2026-11-18 changes
    second = _publish(database, serving_dir, keep=1, large=LARGE, **_later(1))
    assert second.pruned == [first.version]
    store = serving_dir / "partitions"
    named = {
        partition["folder"]
        for entry in second.snapshot.tables.values()
        for partition in entry.get("partitions", {}).values()
    }
    on_disk = {str(path.relative_to(serving_dir)) for path in store.glob("*/*/*")}
    assert on_disk == named
    old_day = f"partitions/marts.fct_conversations/{first.version}/conversation_date=2026-11-18"
    assert old_day not in on_disk
    assert f"partitions/marts.fct_conversations/{first.version}/conversation_date=2026-11-19" in on_disk
    # Every partition of the first version's other tables is still named: their writer's folders stay.
    assert (store / "marts.metrics_daily" / first.version).is_dir()
    _assert_snapshot_equals_warehouse(database, second.snapshot)
    # A version nobody names any more takes its writer's folder, and a table gone takes its folder.
    _sql(database, "drop table marts.metrics_hourly")
    _add_day(database, "2026-11-20")
    third = _publish(database, serving_dir, keep=1, large=LARGE, **_later(2))
    assert third.pruned == [second.snapshot.version]
    assert not (store / "marts.metrics_hourly").exists()
    assert {str(path.relative_to(serving_dir)) for path in store.glob("*/*/*")} == {
        partition["folder"]
        for entry in third.snapshot.tables.values()
        for partition in entry.get("partitions", {}).values()
    }


@pytest.mark.parametrize("failing_step", ["publishing marts.fct_messages", "writing warehouse.duckdb"])
def test_failed_publish_leaves_the_current_snapshot_untouched(setup, failing_step):
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=LARGE)
    before = _tree_digest(serving_dir)
    _add_day(database, "2026-11-21")
    _add_conversation(database, "c4", "2026-11-21")
    steps: list[str] = []

    def fail(message: str) -> None:
        steps.append(message)
        if message == failing_step:
            raise OSError("disk full (simulated) while publishing")

    with pytest.raises(OSError, match="disk full"):
        _publish(database, serving_dir, large=LARGE, progress=fail, **_later(2))
    # It failed half-way through writing the new version (some files written, others not)...
    assert "publishing marts.fct_conversations" in steps
    # ...and no byte changed: no partial folder, no stand-in link left.
    assert _tree_digest(serving_dir) == before
    assert serving.current_snapshot(serving_dir).version == first.snapshot.version
    assert sorted(path.name for path in (serving_dir / "versions").iterdir()) == [first.snapshot.version]


def test_leftovers_of_an_interrupted_publish_are_removed(setup):
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=LARGE).snapshot
    versions = serving_dir / "versions"
    (versions / ".20261120T090000000000Z-deadbeef.partial" / "parquet").mkdir(parents=True)
    (versions / "20261120T090000000000Z-deadbeef").symlink_to(".20261120T090000000000Z-deadbeef.partial")
    # what the interrupted publish had written into the store
    orphan = serving_dir / "partitions/marts.metrics_daily/20261120T090000000000Z-deadbeef/metric_date=2026-11-19"
    orphan.mkdir(parents=True)
    (orphan / "part0.parquet").write_bytes(b"PAR1")
    assert serving.list_versions(serving_dir) == [first.version]
    _add_day(database, "2026-11-20")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    assert sorted(path.name for path in versions.iterdir()) == [first.version, second.version]
    assert not orphan.parent.exists()
    _assert_snapshot_equals_warehouse(database, second)


@pytest.mark.parametrize("large", [None, LARGE])
def test_same_data_publishes_no_new_version(setup, large):
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=large)
    before = _tree_digest(serving_dir)
    again = _publish(database, serving_dir, large=large, **_later(3))
    assert not again.created
    assert again.snapshot.version == first.snapshot.version
    assert _tree_digest(serving_dir) == before


def test_floating_point_noise_is_not_new_data(setup):
    database, serving_dir = setup
    con = open_warehouse(database)
    con.execute("create table marts.scores as select cast(0.1 as double) + cast(0.2 as double) as score")
    con.close()
    first = _publish(database, serving_dir)
    con = open_warehouse(database)
    # A rebuild summing doubles in another order: 0.3 instead of 0.1 + 0.2 (the last bits differ).
    con.execute("update marts.scores set score = cast(0.3 as double)")
    assert con.execute("select score != cast(0.1 as double) + cast(0.2 as double) from marts.scores").fetchone()[0]
    con.close()
    noise = _publish(database, serving_dir, **_later(1))
    assert not noise.created and noise.snapshot.version == first.snapshot.version
    con = open_warehouse(database)
    con.execute("update marts.scores set score = 0.31")
    con.close()
    change = _publish(database, serving_dir, **_later(2))
    assert change.created and change.snapshot.version != first.snapshot.version


def test_keeps_the_newest_n_versions(setup, monkeypatch):
    database, serving_dir = setup
    monkeypatch.setenv(serving.KEEP_ENV, "2")
    versions = []
    for index, day in enumerate(["2026-11-21", "2026-11-22", "2026-11-23"]):
        _add_day(database, day)
        versions.append(_publish(database, serving_dir, large=LARGE, **_later(index)).snapshot.version)
    assert serving.list_versions(serving_dir) == versions[1:]
    assert serving.current_snapshot(serving_dir).version == versions[-1]


def test_settings_are_checked(monkeypatch):
    monkeypatch.setenv(serving.KEEP_ENV, "zero")
    with pytest.raises(ValueError, match="CONVO_SERVING_KEEP='zero' is not a whole number"):
        serving.keep_versions()
    monkeypatch.setenv(serving.KEEP_ENV, "0")
    with pytest.raises(ValueError, match="keep at least 1"):
        serving.keep_versions()
    monkeypatch.setenv(serving.PARQUET_ROWS_ENV, "lots")
    with pytest.raises(ValueError, match="CONVO_SERVING_PARQUET_ROWS='lots' is not a whole number"):
        serving.parquet_rows()
    monkeypatch.setenv(serving.PARQUET_ROWS_ENV, "5000")
    assert serving.parquet_rows() == 5000


def test_the_threshold_comes_from_the_environment(setup, monkeypatch):
    database, serving_dir = setup
    monkeypatch.setenv(serving.PARQUET_ROWS_ENV, "3")
    snapshot = _publish(database, serving_dir).snapshot
    storage = {table: entry["storage"] for table, entry in snapshot.tables.items()}
    assert storage["marts.fct_conversations"] == "parquet" and storage["marts.metrics_hourly"] == "duckdb"


def test_no_snapshot_yet_says_how_to_make_one(tmp_path):
    with pytest.raises(serving.SnapshotNotFoundError, match="convo-warehouse run"):
        serving.current_snapshot(tmp_path / "serving")


def test_a_serving_folder_with_an_apostrophe_works(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    _make_warehouse(database)
    serving_dir = tmp_path / "o'brien's serving"
    snapshot = _publish(database, serving_dir, large=LARGE).snapshot
    _assert_snapshot_equals_warehouse(database, snapshot)


@pytest.mark.parametrize("large", [None, LARGE])
def test_sqlalchemy_reads_the_snapshot_read_only(setup, large):
    import sqlalchemy

    database, serving_dir = setup
    _publish(database, serving_dir, large=large)
    # The URL the README gives BI tools.
    engine = sqlalchemy.create_engine(
        f"duckdb:///{serving_dir / 'current' / 'warehouse.duckdb'}", connect_args={"read_only": True}
    )
    with engine.connect() as connection:
        value = connection.execute(
            sqlalchemy.text("select value from marts.metrics_daily where metric_name = 'completion_rate'")
        ).scalar_one()
        assert value == 0.5
        names = connection.execute(
            sqlalchemy.text("select conversation_id from marts.fct_conversations where conversation_date = :day"),
            {"day": dt.date(2026, 11, 19)},
        ).scalars().all()
        assert sorted(names) == ["c2", "c3"]
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
            connection.execute(sqlalchemy.text("create table marts.scratch as select 1 as x"))
    engine.dispose()


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------


def _export(serving_dir: Path, *args: str):
    from convo_warehouse.commands.export import export

    return CliRunner().invoke(export, ["--serving-dir", str(serving_dir), *args])


@pytest.mark.parametrize("large", [None, LARGE])
def test_export_csv_since_a_day(setup, tmp_path, large):
    database, serving_dir = setup
    _publish(database, serving_dir, large=large)
    out = tmp_path / "out" / "metrics.csv"
    result = _export(serving_dir, "--table", "metrics_daily", "--since", "2026-11-19", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].replace('"', "") == "metric_date,metric_name,segment_type,segment_value,value"
    assert len(lines) == 3  # header + the two rows of 2026-11-19
    assert "wrote 2 rows of marts.metrics_daily" in result.output


def test_export_parquet_of_a_schema_qualified_table(setup, tmp_path):
    database, serving_dir = setup
    _publish(database, serving_dir)
    out = tmp_path / "reconciliation.parquet"
    result = _export(serving_dir, "--table", "audit.reconciliation", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == [{"load_id": 1, "raw_rows": 10}]


def test_export_unknown_table_lists_the_published_ones(setup, tmp_path):
    database, serving_dir = setup
    _publish(database, serving_dir)
    result = _export(serving_dir, "--table", "metrics_weekly", "--format", "csv", "--out", str(tmp_path / "x.csv"))
    assert result.exit_code != 0
    assert "unknown table 'marts.metrics_weekly'" in result.output
    assert "metrics_daily" in result.output and "audit.reconciliation" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_export_since_needs_a_date_column(setup, tmp_path):
    database, serving_dir = setup
    _publish(database, serving_dir)
    result = _export(serving_dir, "--table", "audit.reconciliation", "--since", "2026-01-01", "--out", str(tmp_path / "r.csv"))
    assert result.exit_code != 0
    assert "has no date or timestamp column" in result.output


@pytest.mark.parametrize("large", [None, LARGE])
def test_export_reads_every_served_table(setup, tmp_path, large):
    database, serving_dir = setup
    snapshot = _publish(database, serving_dir, large=large).snapshot
    warehouse = duckdb.connect(str(database), read_only=True)
    try:
        for table in snapshot.tables:
            out = tmp_path / f"{table}.parquet"
            result = _export(serving_dir, "--table", table, "--out", str(out))
            assert result.exit_code == 0, result.output
            exported = sorted((tuple(row.values()) for row in pq.read_table(out).to_pylist()), key=repr)
            assert exported == _content(warehouse, table, _served_columns(table)), table
    finally:
        warehouse.close()


def test_export_without_a_snapshot_says_how_to_make_one(tmp_path):
    result = _export(tmp_path / "nothing", "--table", "metrics_daily", "--out", str(tmp_path / "x.csv"))
    assert result.exit_code != 0
    assert "no published snapshot" in result.output


# ---------------------------------------------------------------------------
# Busy errors say who holds the warehouse and where readers should go
# ---------------------------------------------------------------------------

_HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
    print("holding", flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds the warehouse open (read or write) until the test ends."""
    processes = []

    def start(database: Path, mode: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(database), mode], stdout=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout.readline().strip() == "holding"
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait(timeout=10)


def test_writer_blocked_by_a_reader_is_told_to_point_readers_at_the_snapshot(setup, holder):
    database, _serving_dir = setup
    reader = holder(database, "read")
    [found] = lock_holders(database)
    assert (found.pid, found.mode) == (reader.pid, "read")
    assert "duckdb.connect" in found.command  # the reader's command line
    with pytest.raises(WarehouseBusyError) as error:
        connect(database, read_only=False)
    message = str(error.value)
    assert "1 reader(s) hold" in message and f"pid {reader.pid}" in message
    assert "open for writing" not in message
    assert str(database.parent / "serving" / "current" / "warehouse.duckdb") in message


def test_reader_blocked_by_a_writer_is_sent_to_the_snapshot(setup, holder):
    database, _serving_dir = setup
    writer = holder(database, "write")
    with pytest.raises(WarehouseBusyError) as error:
        connect(database, read_only=True)
    message = str(error.value)
    assert f"a writer (pid {writer.pid}" in message
    assert "Read the published snapshot instead" in message
    assert busy_message(database, "write").startswith(f"warehouse is busy: another writer (pid {writer.pid}")


def test_run_refuses_at_once_when_a_reader_holds_the_warehouse(setup, holder, tmp_path):
    from convo_warehouse.commands.run import run

    database, _serving_dir = setup
    landing = tmp_path / "landing"
    landing.mkdir()
    reader = holder(database, "read")
    # `run` sets the run's settings in the process's environment (its dbt and assets read them
    # there): the runner restores them, so later tests of this worker never inherit this warehouse
    settings = {"CONVO_DUCKDB_PATH": None, "CONVO_LANDING_DIR": None, "CONVO_CLASSIFIER": None}
    result = CliRunner(env=settings).invoke(run, ["--landing", str(landing), "--warehouse", str(database)])
    assert result.exit_code == 3
    assert f"pid {reader.pid}" in result.output and "published snapshot" in result.output


# ---------------------------------------------------------------------------
# Who can read the snapshot and exports (they hold message text), durability, quoting


@pytest.fixture
def loose_umask():
    """The umask most systems default to (files 0644): the modes below must not depend on it."""
    import os

    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _modes(folder: Path) -> dict[str, str]:
    """Permission bits of everything under ``folder`` (links excluded), by kind."""
    return {
        ("dir " if path.is_dir() else "file ") + str(path.relative_to(folder)): oct(path.stat().st_mode & 0o777)
        for path in sorted(folder.rglob("*"))
        if not path.is_symlink()
    }


def _assert_modes(serving_dir: Path, files: str, folders: str) -> None:
    modes = _modes(serving_dir)
    assert {key: mode for key, mode in modes.items() if key.startswith("file ") and mode != files} == {}
    assert {key: mode for key, mode in modes.items() if key.startswith("dir ") and mode != folders} == {}


@pytest.mark.parametrize("large", [None, LARGE])
def test_snapshot_files_are_private_by_default(setup, loose_umask, monkeypatch, large):
    """Every file (written, linked, the copied DuckDB file) and every folder, the day partitions DuckDB
    creates included, in the first version and in one that adds a day and links the rest."""
    monkeypatch.delenv("CONVO_FILE_MODE", raising=False)
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=large).snapshot
    folder = f"versions/{first.version}"
    modes = _modes(serving_dir)
    assert modes[f"file {folder}/warehouse.duckdb"] == "0o600"
    assert modes[f"dir {folder}/parquet/marts.metrics_daily"] == "0o700"
    day = first.tables["marts.metrics_daily"]["partitions"]["2026-11-19"]["folder"]
    assert modes[f"file {day}/part0.parquet"] == "0o600"
    assert modes[f"dir {day}"] == "0o700"
    assert modes["dir partitions"] == "0o700"
    _add_day(database, "2026-11-20")
    second = _publish(database, serving_dir, large=large, **_later(1)).snapshot
    assert second.manifest["changes"]["files"]["linked"] > 0 and second.manifest["changes"]["files"]["copied"] == 0
    _assert_modes(serving_dir, files="0o600", folders="0o700")
    assert oct(serving_dir.stat().st_mode & 0o777) == "0o700"  # created by the publish


def test_file_mode_setting_opens_the_snapshot_to_a_group(setup, loose_umask, monkeypatch):
    monkeypatch.setenv("CONVO_FILE_MODE", "640")
    database, serving_dir = setup
    _publish(database, serving_dir, large=LARGE)
    _add_day(database, "2026-11-20")
    _publish(database, serving_dir, large=LARGE, **_later(1))
    _assert_modes(serving_dir, files="0o640", folders="0o750")


def test_a_changed_file_mode_copies_instead_of_linking(setup, loose_umask, monkeypatch):
    """A hard link shares its file's mode: linking a 640 file into a 600 version would leave it readable
    by the group, and changing its mode would change the published version it came from."""
    monkeypatch.setenv("CONVO_FILE_MODE", "640")
    database, serving_dir = setup
    first = _publish(database, serving_dir, large=LARGE).snapshot
    before = _files(first.folder / "parquet")
    monkeypatch.setenv("CONVO_FILE_MODE", "600")
    _add_day(database, "2026-11-20")
    second = _publish(database, serving_dir, large=LARGE, **_later(1)).snapshot
    assert second.manifest["changes"]["files"] == {"written": 2, "linked": 0, "copied": len(before)}
    assert {oct(stat.st_mode & 0o777) for stat in _files(first.folder).values()} == {"0o640"}
    assert {oct(stat.st_mode & 0o777) for stat in _files(second.folder).values()} == {"0o600"}
    assert {oct(path.stat().st_mode & 0o777) for path in (serving_dir / "partitions").rglob("*.parquet")} == {
        "0o640", "0o600"  # the first version's partitions, and their copies
    }
    _assert_snapshot_equals_warehouse(database, second)
    third = _publish(database, serving_dir, large=LARGE, **_later(2))
    assert not third.created  # same data: the mode change alone publishes nothing
    _add_day(database, "2026-11-21")
    fourth = _publish(database, serving_dir, large=LARGE, **_later(3)).snapshot
    assert fourth.manifest["changes"]["files"]["copied"] == 0  # linked again once the modes agree


def test_bad_file_mode_is_refused_before_anything_is_written(setup, monkeypatch, tmp_path):
    monkeypatch.setenv("CONVO_FILE_MODE", "rw-r--r--")
    database, serving_dir = setup
    with pytest.raises(ValueError, match="CONVO_FILE_MODE='rw-r--r--' is not a file mode"):
        _publish(database, serving_dir)
    assert not serving_dir.exists()
    monkeypatch.setenv("CONVO_FILE_MODE", "044")  # the owner could not read its own files
    result = _export(serving_dir, "--table", "metrics_daily", "--out", str(tmp_path / "m.csv"))
    assert result.exit_code != 0 and "is not a file mode" in result.output


def test_folder_mode_adds_search_where_the_file_mode_reads():
    from convo_warehouse.lib.file_modes import dir_mode, file_mode

    assert [oct(dir_mode({"CONVO_FILE_MODE": mode})) for mode in ("600", "640", "644", "660")] == [
        "0o700", "0o750", "0o755", "0o770",
    ]
    assert file_mode({}) == 0o600


def test_export_files_are_private_by_default(setup, loose_umask, monkeypatch, tmp_path):
    monkeypatch.delenv("CONVO_FILE_MODE", raising=False)
    database, serving_dir = setup
    _publish(database, serving_dir)
    for name in ("new/metrics.csv", "new/metrics.parquet"):
        out = tmp_path / name
        result = _export(serving_dir, "--table", "metrics_daily", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "new").stat().st_mode & 0o777) == "0o700"


def test_versions_folder_is_fsynced_after_the_rename(setup, monkeypatch):
    """A rename is durable only once its folder is fsynced: without it a crash can lose the
    published version although `current` already points at it."""
    import os

    database, serving_dir = setup
    steps: list[tuple[str, str]] = []
    real_rename, real_fsync = os.rename, os.fsync

    def rename(source, target):
        steps.append(("rename", Path(target).parent.name))
        return real_rename(source, target)

    def fsync(fd):
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path.is_dir():
            steps.append(("fsync dir", path.name))
        return real_fsync(fd)

    monkeypatch.setattr(serving.os, "rename", rename)
    monkeypatch.setattr(serving.os, "fsync", fsync)
    _publish(database, serving_dir)
    assert ("rename", "versions") in steps
    assert steps.index(("fsync dir", "versions")) > steps.index(("rename", "versions"))


def test_the_publisher_partitions_each_incremental_mart_by_a_day_its_runs_record(manifest):
    """A run records the days of scope_days as rewritten in every incremental mart
    (macros/incremental/run_ledgers.sql); the publisher partitions a mart's Parquet by its day
    column, so a new day rewrites only those partitions. A mart replaced day by day is partitioned
    by its scope key (its rows of other days are not touched); a mart replaced conversation by
    conversation by any day column (a conversation's rows carry the days of its events, all in
    scope_days). The manifest's declared columns stand for the table's."""
    checked = 0
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["schema"] not in serving.SERVED_SCHEMAS:
            continue
        config = node["config"]
        if config["materialized"] != "incremental":
            continue
        columns = [(name, (column.get("data_type") or "").upper()) for name, column in node["columns"].items()]
        day = serving._day_column(columns)
        if config.get("scope_model") == "scope_days":
            assert day is not None and day.source == config["scope_key"], (
                f"{node['name']}: replaced by {config['scope_key']}, the publisher partitions by "
                f"{day.source if day else 'nothing'}: set DAY_COLUMNS in lib/serving.py"
            )
        checked += day is not None
    assert checked >= 10


def test_no_served_mart_with_a_day_column_is_a_view(manifest):
    """A view's changed days are recorded by no build, so every publish would hash all of its rows to find
    them, a cost growing with the history. A mart with a day column is a table (incremental, its days
    recorded in audit.partitions_rewritten); a view is a small sum over day partials, compared whole."""
    served = [node for node in manifest["nodes"].values()
              if node["resource_type"] == "model" and node["schema"] in serving.SERVED_SCHEMAS]
    assert len(served) >= 20
    day_sources = {day.source for day in serving.DAY_COLUMNS}
    views = [node for node in served if node["config"]["materialized"] == "view"]
    assert views, "no served mart is a view: the check reads nothing"
    with_days = sorted(node["name"] for node in views if day_sources & set(node["columns"]))
    assert not with_days, f"served views with a day column: {with_days}"


@pytest.mark.parametrize("day", serving.DAY_COLUMNS, ids=[day.key for day in serving.DAY_COLUMNS])
def test_a_days_filter_keeps_exactly_the_rows_whose_day_is_listed(day):
    """The days' rows and no other, for a date column and for a timestamp's day (a range of it, then the days' list):
    rows at either edge of a day, in a day not listed, and without a day."""
    con = duckdb.connect()
    moments = [
        "2026-02-01 00:00:00", "2026-02-01 23:59:59.999999", "2026-02-02 00:00:00", "2026-01-31 23:59:59.999999",
        "2026-03-05 12:00:00", None,
    ]
    con.execute(f"create table t ({serving.ident(day.source)} {day.source_type})")
    con.executemany("insert into t values (cast(? as timestamp))", [[moment] for moment in moments])
    listed = [dt.date(2026, 2, 1), dt.date(2026, 3, 5)]
    for with_null in (False, True):
        kept = con.execute(
            f"select cast({day.expression} as varchar) from t {serving._days_filter(day, listed, with_null)} order by 1"
        ).fetchall()
        expected = con.execute(
            f"select cast({day.expression} as varchar) from t where {day.expression} in ('2026-02-01', '2026-03-05')"
            f"{f' or {day.expression} is null' if with_null else ''} order by 1"
        ).fetchall()
        assert kept == expected
        assert len(kept) == 3 + with_null  # both edges of 2026-02-01 and 2026-03-05 (and the null)


def test_side_by_side_reports_each_item_as_it_starts_keeps_order_and_stops_at_the_first_error():
    import threading

    con = duckdb.connect()
    lock, running, said, most = threading.Lock(), set(), [], [0]

    def work(item: int, cursor: duckdb.DuckDBPyConnection) -> int:
        with lock:
            running.add(item)
            most[0] = max(most[0], len(running))
        try:
            if item == 5:
                raise ValueError("item 5 failed")
            return cursor.execute("select ? * 10", [item]).fetchone()[0]
        finally:
            with lock:
                running.discard(item)

    def before(item: int) -> None:
        # told when it is handed over: no more than the threads are then still at work
        with lock:
            said.append((item, len(running)))

    assert serving._side_by_side(con, work, list(range(5)), before=before) == [0, 10, 20, 30, 40]
    assert [item for item, _ in said] == list(range(5))
    assert all(busy < serving.PUBLISH_THREADS for _, busy in said)
    assert most[0] <= serving.PUBLISH_THREADS
    said.clear()
    with pytest.raises(ValueError, match="item 5 failed"):
        serving._side_by_side(con, work, list(range(3, 12)), before=before)
    # the failure is seen before every item was handed over: the rest never start
    assert [item for item, _ in said][-1] < 11
