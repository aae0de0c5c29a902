"""Publishing the snapshot (lib/serving.py) on a small hand-made warehouse: what is served,
atomic switch, readers keep their view, a failed publish changes nothing, no-op, pruning,
busy errors that name the holder, and `convo-warehouse export`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from convo_warehouse.lib import serving
from convo_warehouse.lib.warehouse import WarehouseBusyError, busy_message, connect, lock_holders
from conftest import open_warehouse

PUBLISHED_AT = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def _clock(start: dt.datetime = PUBLISHED_AT):
    moments = iter(start + dt.timedelta(minutes=minute) for minute in range(1000))
    return lambda: next(moments)


def _make_warehouse(path: Path) -> None:
    con = open_warehouse(path)
    con.execute(
        """
        create schema marts; create schema audit; create schema quarantine; create schema staging;
        create table marts.fct_conversations as
            select * from (values ('c1', timestamp '2026-11-18 10:00:00'), ('c2', timestamp '2026-11-19 23:30:00'))
            as t(conversation_id, last_event_at);
        create table marts.metrics_daily as
            select * from (values
                (date '2026-11-18', 'conversations', 'all', 'all', 1.0),
                (date '2026-11-19', 'conversations', 'all', 'all', 1.0),
                (date '2026-11-19', 'completion_rate', 'all', 'all', 0.5)
            ) as t(metric_date, metric_name, segment_type, segment_value, value);
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


def _add_day(database: Path, day: str) -> None:
    con = open_warehouse(database)
    con.execute(
        f"insert into marts.metrics_daily values (date '{day}', 'conversations', 'all', 'all', 7.0)"
    )
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
        "marts.metrics_daily",
        "quarantine.rejected_events",
    ]
    manifest = json.loads((serving_dir / "current" / "manifest.json").read_text())
    assert manifest["run_id"] == "run-1"
    assert manifest["published_at"] == PUBLISHED_AT.isoformat()
    assert manifest["newest_event_at"] == "2026-11-19T23:30:00"
    assert manifest["tests"] == {"status": "passed"}
    assert manifest["tables"]["marts.metrics_daily"]["rows"] == 3
    assert manifest["tables"]["marts.conversations_per_day"]["rows"] == 2
    # The DuckDB file has the same schema.table names as the warehouse.
    con = snapshot.connect()
    try:
        assert con.execute("select sum(value) from marts.metrics_daily").fetchone()[0] == 2.5
        columns = [row[0] for row in con.execute("describe quarantine.rejected_events").fetchall()]
        assert "raw_text" not in columns and "reason" in columns
        assert con.execute("select count(*) from information_schema.tables where table_schema = 'staging'").fetchone()[0] == 0
    finally:
        con.close()
    # One Parquet file per table, with the same rows.
    parquet = pq.read_table(snapshot.parquet("metrics_daily"))
    assert parquet.num_rows == 3
    assert sorted(parquet.column("value").to_pylist()) == [0.5, 1.0, 1.0]
    assert snapshot.parquet("metrics_daily").name == "marts.metrics_daily.parquet"


def test_reader_opened_before_a_publish_keeps_its_view(setup):
    database, serving_dir = setup
    _publish(database, serving_dir, keep=1)
    # A reader opens the snapshot as a BI tool does: through the stable `current` path.
    reader = duckdb.connect(str(serving_dir / "current" / "warehouse.duckdb"), read_only=True)
    try:
        before = reader.execute("select count(*), sum(value) from marts.metrics_daily").fetchall()
        _add_day(database, "2026-11-20")
        second = _publish(database, serving_dir, keep=1, now=_clock(PUBLISHED_AT + dt.timedelta(hours=1)))
        assert second.created
        # keep=1 pruned the reader's version folder; the open file stays readable and unchanged.
        assert len(second.pruned) == 1
        assert serving.list_versions(serving_dir) == [second.snapshot.version]
        assert reader.execute("select count(*), sum(value) from marts.metrics_daily").fetchall() == before == [(3, 2.5)]
        assert reader.execute("select count(*) from marts.conversations_per_day").fetchone()[0] == 2
    finally:
        reader.close()
    fresh = serving.current_snapshot(serving_dir).connect()
    try:
        assert fresh.execute("select count(*), sum(value) from marts.metrics_daily").fetchall() == [(4, 9.5)]
    finally:
        fresh.close()


def test_failed_publish_leaves_the_current_snapshot_untouched(setup):
    database, serving_dir = setup
    first = _publish(database, serving_dir)
    before = _tree_digest(serving_dir)
    _add_day(database, "2026-11-21")
    written: list[str] = []

    def fail_on_second_table(message: str) -> None:
        written.append(message)
        if len(written) == 2:
            raise OSError("disk full (simulated) while publishing")

    with pytest.raises(OSError, match="disk full"):
        _publish(database, serving_dir, progress=fail_on_second_table, now=_clock(PUBLISHED_AT + dt.timedelta(hours=2)))
    assert len(written) == 2  # it failed half-way through writing the new version
    assert _tree_digest(serving_dir) == before  # no byte changed, no partial folder left
    assert serving.current_snapshot(serving_dir).version == first.snapshot.version


def test_same_data_publishes_no_new_version(setup):
    database, serving_dir = setup
    first = _publish(database, serving_dir)
    before = _tree_digest(serving_dir)
    again = _publish(database, serving_dir, now=_clock(PUBLISHED_AT + dt.timedelta(hours=3)))
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
    noise = _publish(database, serving_dir, now=_clock(PUBLISHED_AT + dt.timedelta(hours=1)))
    assert not noise.created and noise.snapshot.version == first.snapshot.version
    con = open_warehouse(database)
    con.execute("update marts.scores set score = 0.31")
    con.close()
    change = _publish(database, serving_dir, now=_clock(PUBLISHED_AT + dt.timedelta(hours=2)))
    assert change.created and change.snapshot.version != first.snapshot.version


def test_keeps_the_newest_n_versions(setup, monkeypatch):
    database, serving_dir = setup
    monkeypatch.setenv(serving.KEEP_ENV, "2")
    versions = []
    for index, day in enumerate(["2026-11-21", "2026-11-22", "2026-11-23"]):
        _add_day(database, day)
        versions.append(_publish(database, serving_dir, now=_clock(PUBLISHED_AT + dt.timedelta(hours=index))).snapshot.version)
    assert serving.list_versions(serving_dir) == versions[1:]
    assert serving.current_snapshot(serving_dir).version == versions[-1]


def test_keep_setting_is_checked(monkeypatch):
    monkeypatch.setenv(serving.KEEP_ENV, "zero")
    with pytest.raises(ValueError, match="CONVO_SERVING_KEEP='zero' is not a whole number"):
        serving.keep_versions()
    monkeypatch.setenv(serving.KEEP_ENV, "0")
    with pytest.raises(ValueError, match="keep at least 1"):
        serving.keep_versions()


def test_no_snapshot_yet_says_how_to_make_one(tmp_path):
    with pytest.raises(serving.SnapshotNotFoundError, match="convo-warehouse run"):
        serving.current_snapshot(tmp_path / "serving")


def test_sqlalchemy_reads_the_snapshot_read_only(setup):
    import sqlalchemy

    database, serving_dir = setup
    _publish(database, serving_dir)
    # The URL the README gives BI tools.
    engine = sqlalchemy.create_engine(
        f"duckdb:///{serving_dir / 'current' / 'warehouse.duckdb'}", connect_args={"read_only": True}
    )
    with engine.connect() as connection:
        value = connection.execute(
            sqlalchemy.text("select value from marts.metrics_daily where metric_name = 'completion_rate'")
        ).scalar_one()
        assert value == 0.5
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
            connection.execute(sqlalchemy.text("delete from marts.metrics_daily"))
    engine.dispose()


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------


def _export(serving_dir: Path, *args: str):
    from convo_warehouse.commands.export import export

    return CliRunner().invoke(export, ["--serving-dir", str(serving_dir), *args])


def test_export_csv_since_a_day(setup, tmp_path):
    database, serving_dir = setup
    _publish(database, serving_dir)
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
    result = CliRunner().invoke(run, ["--landing", str(landing), "--warehouse", str(database)])
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


def test_snapshot_files_are_private_by_default(setup, loose_umask, monkeypatch):
    monkeypatch.delenv("CONVO_FILE_MODE", raising=False)
    database, serving_dir = setup
    result = _publish(database, serving_dir)
    modes = _modes(serving_dir)
    assert modes[f"file versions/{result.snapshot.version}/warehouse.duckdb"] == "0o600"
    assert modes[f"file versions/{result.snapshot.version}/parquet/marts.metrics_daily.parquet"] == "0o600"
    assert {mode for key, mode in modes.items() if key.startswith("file ")} == {"0o600"}
    assert {mode for key, mode in modes.items() if key.startswith("dir ")} == {"0o700"}
    assert oct(serving_dir.stat().st_mode & 0o777) == "0o700"  # created by the publish


def test_file_mode_setting_opens_the_snapshot_to_a_group(setup, loose_umask, monkeypatch):
    monkeypatch.setenv("CONVO_FILE_MODE", "640")
    database, serving_dir = setup
    _publish(database, serving_dir)
    modes = _modes(serving_dir)
    assert {mode for key, mode in modes.items() if key.startswith("file ")} == {"0o640"}
    assert {mode for key, mode in modes.items() if key.startswith("dir ")} == {"0o750"}


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


def test_serving_dir_with_an_apostrophe_publishes(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    _make_warehouse(database)
    serving_dir = tmp_path / "bob's snapshots"
    result = _publish(database, serving_dir)
    con = serving.current_snapshot(serving_dir).connect()
    try:
        assert con.execute("select count(*) from marts.metrics_daily").fetchone()[0] == 3
    finally:
        con.close()
    assert pq.read_table(result.snapshot.parquet("metrics_daily")).num_rows == 3


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
