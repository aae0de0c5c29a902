"""The collector's durable landing files: rotation by size and age, recovery after a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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
