"""``kept_open`` (lib/warehouse.py): a run's steps after dbt share one open warehouse, which is closed
when dbt's process needs the file and at the run's end."""

import contextlib

from convo_warehouse.lib.warehouse import connect, keep_open, kept_open, lock_holders


def _open_here(path) -> bool:
    """Whether this process holds DuckDB's lock on the file (a connection to it is open)."""
    return any(holder.mode in ("read", "write") for holder in lock_holders(path, include_self=True))


def _warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with contextlib.closing(connect(path)) as con:
        con.execute("create table steps as select 1 as step")
    return path


def test_the_warehouse_stays_open_from_keep_open_to_the_end_of_kept_open(tmp_path):
    path = _warehouse(tmp_path)
    with kept_open(path):
        assert not _open_here(path)  # nothing is opened before dbt's build ends
        keep_open(path)
        assert _open_here(path)
        with contextlib.closing(connect(path)) as step:
            step.execute("insert into steps values (2)")
        assert _open_here(path)  # a step closing its connection leaves the database open
        # a read-only step shares it too (DuckDB shares a database within a process in one mode)
        with contextlib.closing(connect(path, read_only=True)) as reader:
            assert reader.execute("select count(*) from steps").fetchone() == (2,)
        assert _open_here(path)
    assert not _open_here(path)
    with contextlib.closing(connect(path, read_only=True)) as after:
        assert after.execute("select list(step order by step) from steps").fetchone() == ([1, 2],)


def test_keep_open_false_closes_it_for_another_process(tmp_path):
    path = _warehouse(tmp_path)
    with kept_open(path):
        keep_open(path)
        keep_open(path, keep=False)  # a dbt step: its own process opens the file
        assert not _open_here(path)
        keep_open(path)
        assert _open_here(path)
    assert not _open_here(path)


def test_keep_open_outside_kept_open_opens_nothing(tmp_path):
    path = _warehouse(tmp_path)
    keep_open(path)
    assert not _open_here(path)
    with contextlib.closing(connect(path, read_only=True)):
        # read-only, as asked: no warehouse is kept here
        assert [holder.mode for holder in lock_holders(path, include_self=True)] == ["read"]
