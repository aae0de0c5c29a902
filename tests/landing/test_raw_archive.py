"""The raw rows live in zstd Parquet beside the warehouse, read through the view ``raw.events``:
one folder per committed load run, nothing a reader sees from a run that did not commit, the
rows of a warehouse from before the archive moved out of its file, a copied folder reading its own
files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from convo_warehouse.lib.landing import archive, load, registry
from convo_warehouse.lib.warehouse import connect


def write_events(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        {
            "event_id": event_id,
            "conversation_id": "c1",
            "event_type": "user_message",
            "timestamp": f"2024-03-01T10:00:{number:02d}Z",
            "properties": {"content": f"hello {number}"},
        }
        for number, event_id in enumerate(ids)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def two_files_loaded(tmp_path: Path):
    """A warehouse whose first load run read a.jsonl (a1, a2) and b.jsonl (b1); (connection, landing)."""
    landing = tmp_path / "landing"
    write_events(landing / "a.jsonl", ["a1", "a2"])
    write_events(landing / "b.jsonl", ["b1"])
    con = connect(tmp_path / "w.duckdb")
    load.load_landing(con, landing, progress=False)
    return con, landing


def raw_ids(con) -> list[tuple]:
    return con.execute("select load_id, source_file, event_id from raw.events order by 1, 2, 3").fetchall()


def test_raw_rows_are_parquet_files_per_load_run_outside_the_warehouse_file(tmp_path):
    con, landing = two_files_loaded(tmp_path)
    try:
        write_events(landing / "c.jsonl", ["c1"])
        load.load_landing(con, landing, progress=False)

        assert raw_ids(con) == [(1, "a.jsonl", "a1"), (1, "a.jsonl", "a2"), (1, "b.jsonl", "b1"), (2, "c.jsonl", "c1")]
        kinds = con.execute(
            "select table_name, table_type from information_schema.tables where table_schema = 'raw' order by 1"
        ).fetchall()
        assert ("events", "VIEW") in kinds and ("events", "BASE TABLE") not in kinds
        root = tmp_path / "w.raw" / "events"
        assert sorted(path.relative_to(root).as_posix() for path in root.rglob("*.parquet")) == [
            "load_id=1/000000.parquet", "load_id=1/000001.parquet", "load_id=2/000000.parquet",
        ]
        codecs = {
            pq.ParquetFile(path).metadata.row_group(0).column(0).compression for path in root.rglob("*.parquet")
        }
        assert codecs == {"ZSTD"}
        # a filter on load runs opens only their folders
        plan = "\n".join(row[1] for row in con.execute("explain select count(*) from raw.events where load_id in (2)").fetchall())
        assert "load_id=1" not in plan
    finally:
        con.close()


def test_a_run_that_does_not_commit_leaves_no_raw_row_and_the_next_run_loads_its_files_once(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    write_events(landing / "a.jsonl", ["a1"])
    con = connect(tmp_path / "w.duckdb")
    try:
        load.load_landing(con, landing, progress=False)
        write_events(landing / "b.jsonl", ["b1", "b2"])
        write_events(landing / "c.jsonl", ["c1"])

        recorded = registry.record_loaded_file

        def killed_after_first_file(con, load_id, *rest):
            recorded(con, load_id, *rest)
            if load_id == 2:
                raise KeyboardInterrupt  # the process stopped mid-run

        monkeypatch.setattr(registry, "record_loaded_file", killed_after_first_file)
        with pytest.raises(KeyboardInterrupt):
            load.load_landing(con, landing, progress=False)
        assert raw_ids(con) == [(1, "a.jsonl", "a1")]
        assert list((tmp_path / "w.raw" / "events" / archive.PENDING).rglob("*.parquet")), "the run wrote before it stopped"

        # and a run stopped between moving its files into place and its commit
        orphan = tmp_path / "w.raw" / "events" / "load_id=2"
        orphan.mkdir()
        shutil.copy(tmp_path / "w.raw" / "events" / "load_id=1" / "000000.parquet", orphan / "000000.parquet")
        assert raw_ids(con) == [(1, "a.jsonl", "a1")], "the view reads committed load runs only"

        monkeypatch.setattr(registry, "record_loaded_file", recorded)
        load.load_landing(con, landing, progress=False)
        assert raw_ids(con) == [(1, "a.jsonl", "a1"), (2, "b.jsonl", "b1"), (2, "b.jsonl", "b2"), (2, "c.jsonl", "c1")]
        assert not (tmp_path / "w.raw" / "events" / archive.PENDING).exists()
    finally:
        con.close()


def test_a_warehouse_with_a_raw_events_table_moves_its_rows_out_unchanged(tmp_path):
    con, _ = two_files_loaded(tmp_path)
    try:
        before = con.execute("select * from raw.events order by all").fetchall()
        # the warehouse as the loader left it before the archive: the rows in a table
        con.execute("create table raw.events_rows as select * from raw.events")
        con.execute("drop view raw.events")
        con.execute("alter table raw.events_rows rename to events")
        shutil.rmtree(tmp_path / "w.raw")

        registry.ensure_raw_tables(con)
        assert con.execute("select * from raw.events order by all").fetchall() == before
        (kind,) = con.execute(
            "select table_type from information_schema.tables where table_schema = 'raw' and table_name = 'events'"
        ).fetchone()
        assert kind == "VIEW"
        assert sorted(p.parent.name for p in (tmp_path / "w.raw" / "events").rglob("*.parquet")) == ["load_id=1"]
    finally:
        con.close()


def test_a_copied_warehouse_folder_reads_its_own_raw_files(tmp_path):
    landing = tmp_path / "landing"
    write_events(landing / "a.jsonl", ["a1"])
    (tmp_path / "one").mkdir()
    con = connect(tmp_path / "one" / "w.duckdb")
    load.load_landing(con, landing, progress=False)
    con.close()
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    shutil.rmtree(tmp_path / "one")

    con = connect(tmp_path / "two" / "w.duckdb")
    try:
        registry.ensure_raw_tables(con)
        assert raw_ids(con) == [(1, "a.jsonl", "a1")]
        con.execute("checkpoint")
        before = (tmp_path / "two" / "w.duckdb").read_bytes()
        registry.ensure_raw_tables(con)  # in order: writes nothing
        con.execute("checkpoint")
        assert (tmp_path / "two" / "w.duckdb").read_bytes() == before
    finally:
        con.close()
