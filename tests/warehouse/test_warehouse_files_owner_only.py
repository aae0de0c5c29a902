"""The warehouse holds every message: its file, its write-ahead log and its data/ folder are owner-only
(CONVO_FILE_MODE), as the snapshot and the landing files are (issue 47, item 7)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap



def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_warehouse_its_wal_and_its_folder_are_owner_only(tmp_path):
    # a command of the CLI, as `convo-warehouse run` opens the warehouse: umask 022 to start with
    script = textwrap.dedent("""
        import os, sys
        from pathlib import Path
        os.umask(0o022)
        from convo_warehouse.cli import main
        main(["keys", "list", "--keys-file", "keys.json"], standalone_mode=False)
        from convo_warehouse.lib.warehouse import connect
        con = connect(Path("data/warehouse.duckdb"))
        con.execute("create table t (a int)")
        con.execute("checkpoint")
        con.execute("insert into t values (1)")  # a WAL created anew after the checkpoint
        assert os.path.exists("data/warehouse.duckdb.wal")
        print(oct(os.stat("data/warehouse.duckdb.wal").st_mode & 0o777))
        con.close()
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "CONVO_FILE_MODE": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "0o600", "the write-ahead log"
    assert mode(tmp_path / "data" / "warehouse.duckdb") == 0o600
    assert mode(tmp_path / "data") == 0o700


def test_an_existing_world_readable_warehouse_is_made_owner_only(tmp_path, monkeypatch):
    from convo_warehouse.lib.warehouse import connect

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir(mode=0o755)
    os.chmod(tmp_path / "data", 0o755)
    connect(tmp_path / "data" / "warehouse.duckdb").close()
    os.chmod(tmp_path / "data" / "warehouse.duckdb", 0o644)
    connect(tmp_path / "data" / "warehouse.duckdb").close()
    assert mode(tmp_path / "data" / "warehouse.duckdb") == 0o600
    assert mode(tmp_path / "data") == 0o700
    # a folder the user pointed us into is left as it is (only the files are ours)
    other = tmp_path / "shared"
    other.mkdir(mode=0o755)
    os.chmod(other, 0o755)
    connect(other / "w.duckdb").close()
    assert mode(other / "w.duckdb") == 0o600 and mode(other) == 0o755
