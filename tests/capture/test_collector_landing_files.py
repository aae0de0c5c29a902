"""The collector's durable landing files: rotation by size and age, recovery after a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convo_warehouse.collector.writer import RotatingWriter
from convo_warehouse.lib.landing import discover_files


def lines(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"event_id": f"e-{i}"}).encode() for i in range(start, start + n)]


def landed_ids(landing: Path) -> list[str]:
    return [json.loads(line)["event_id"] for path in discover_files(landing) for line in path.read_text().splitlines()]


def test_rotates_by_size_and_never_shows_a_partial_file(tmp_path: Path):
    writer = RotatingWriter(tmp_path, "collector", "events", max_bytes=200, max_seconds=3600)
    for batch in range(5):
        writer.append(lines(10, batch * 10))  # ~170 bytes: every append after the first rotates
        assert len(discover_files(tmp_path)) == batch, "only finished files are visible"
    writer.close()
    files = discover_files(tmp_path)
    assert len(files) == 5 and all(path.parent.parent.name == "collector" for path in files)
    assert sorted(landed_ids(tmp_path)) == sorted(f"e-{i}" for i in range(50))
    assert not list((tmp_path / ".tmp").iterdir())


def test_rotates_by_age(tmp_path: Path):
    writer = RotatingWriter(tmp_path, "collector", "events", max_seconds=0.2)
    writer.append(lines(3))
    writer.rotate_if_due()
    assert landed_ids(tmp_path) == []
    time.sleep(0.3)
    writer.rotate_if_due()
    assert landed_ids(tmp_path) == ["e-0", "e-1", "e-2"]
    writer.close()  # nothing open: nothing more
    assert len(discover_files(tmp_path)) == 1


def test_recovers_the_file_of_a_killed_writer_cutting_a_torn_line(tmp_path: Path):
    code = (
        "import os, sys, json\n"
        "from pathlib import Path\n"
        "from convo_warehouse.collector.writer import RotatingWriter\n"
        "w = RotatingWriter(Path(sys.argv[1]), 'collector', 'events')\n"
        "w.append([json.dumps({'event_id': f'e-{i}'}).encode() for i in range(4)])\n"
        "os.write(w._fd, b'{\"event_id\": \"torn')\n"  # a write cut short by the crash
        "os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=60)
    assert len(list((tmp_path / ".tmp").glob("*.part"))) == 1
    writer = RotatingWriter(tmp_path, "collector", "events")
    recovered = writer.recover()
    assert len(recovered) == 1 and recovered[0].read_bytes().endswith(b"\n")
    assert landed_ids(tmp_path) == ["e-0", "e-1", "e-2", "e-3"]


def test_recovery_leaves_a_live_writers_file_alone(tmp_path: Path):
    live = RotatingWriter(tmp_path, "collector", "events")
    live.append(lines(2))
    other = RotatingWriter(tmp_path, "collector", "events")
    assert other.recover() == []
    live.append(lines(2, 2))
    live.close()
    assert sorted(landed_ids(tmp_path)) == ["e-0", "e-1", "e-2", "e-3"]
    assert os.listdir(tmp_path / ".tmp") == []


def test_a_write_cut_short_by_a_full_disk_leaves_no_torn_fragment(tmp_path: Path):
    # A child process with a 64 KiB file-size limit (RLIMIT_FSIZE) appends until
    # a write fails part-way, gets the limit lifted ("space returned") and
    # appends once more. Every landed line must be whole, and exactly the
    # batches whose append returned must be there.
    code = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from convo_warehouse.collector.writer import RotatingWriter\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))\n"
        "w = RotatingWriter(Path(sys.argv[1]), 'collector', 'events')\n"
        "ok, failed = [], 0\n"
        "for batch in range(60):\n"
        "    lines = [json.dumps({'event_id': f'b{batch}-{i}', 'pad': 'x' * 90}).encode() for i in range(10)]\n"
        "    try:\n"
        "        w.append(lines)\n"
        "        ok.append(batch)\n"
        "    except OSError:\n"
        "        failed += 1\n"
        "        if failed == 3:\n"
        "            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))\n"
        "w.close()\n"
        "print(json.dumps({'ok': ok, 'failed': failed}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["failed"] == 3 and len(outcome["ok"]) == 57
    landed = [json.loads(line) for path in discover_files(tmp_path) for line in path.read_text().splitlines()]
    assert sorted(event["event_id"] for event in landed) == sorted(
        f"b{batch}-{i}" for batch in outcome["ok"] for i in range(10))


def test_after_a_failed_fsync_the_file_is_finished_and_a_new_one_opened(tmp_path: Path, monkeypatch):
    writer = RotatingWriter(tmp_path, "collector", "events")
    writer.append(lines(3))
    first_file = writer._path
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync_failing_once(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_once)
    with pytest.raises(OSError):  # the failed fsync reaches the caller (the collector answers 503)
        writer.append(lines(3, 3))
    monkeypatch.setattr(os, "fsync", real_fsync)
    # the first file holds only what was acknowledged, and is already finished
    assert landed_ids(tmp_path) == ["e-0", "e-1", "e-2"]
    writer.append(lines(3, 3))  # the client's retry goes to a new file
    assert writer._path != first_file
    writer.close()
    assert sorted(landed_ids(tmp_path)) == [f"e-{i}" for i in range(6)]


def test_landing_files_and_folders_are_private_to_the_collector_user(tmp_path: Path):
    writer = RotatingWriter(tmp_path, "collector", "events")
    writer.append(lines(2))
    assert os.stat(writer._path).st_mode & 0o777 == 0o600
    writer.close()
    [landed] = discover_files(tmp_path)
    assert landed.stat().st_mode & 0o777 == 0o600
    assert landed.parent.stat().st_mode & 0o777 == 0o700 and (tmp_path / ".tmp").stat().st_mode & 0o777 == 0o700
    # the configured mode, whatever the umask (every convo-warehouse command sets 077 for its own files)
    previous = os.umask(0o077)
    try:
        shared = RotatingWriter(tmp_path / "group", "collector", "events", file_mode=0o640)
        shared.append(lines(1))
        shared.close()
    finally:
        os.umask(previous)
    [group_file] = discover_files(tmp_path / "group")
    assert group_file.stat().st_mode & 0o777 == 0o640 and group_file.parent.stat().st_mode & 0o777 == 0o750
