"""The SDK's on-disk spool: JSONL segments holding events not yet delivered.

Events go here when the collector is unreachable (after the retries) or the
in-memory queue is full, and are re-sent when the collector answers again.
Each process appends to its own segment (``spool-<pid>-<time>.jsonl``),
written with unbuffered appends so a crash of the process loses nothing it
wrote. A segment is held with an exclusive ``flock`` while it is written or
re-sent: a segment nobody holds belongs to a process that ended (or to this
one, between writes), and any tracker using the folder may send it.
Re-sending a segment whose delivery was cut short sends some events twice;
they keep their ``event_id`` and count once in the warehouse.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("convo_warehouse.capture")


class Segment:
    """A spool segment claimed for re-sending (exclusively locked)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def read_lines(self) -> list[bytes]:
        """The segment's complete lines (a torn last line from a crash is skipped)."""
        with open(self._fd, "rb", closefd=False) as handle:
            handle.seek(0)
            data = handle.read()
        lines = data.split(b"\n")
        if lines and lines[-1]:
            log.warning("spool %s: skipping a torn last line (%d bytes)", self.path, len(lines[-1]))
        return [line for line in lines[:-1] if line.strip()]

    def delivered(self) -> None:
        """Every line was acknowledged: remove the segment."""
        self.path.unlink(missing_ok=True)
        os.close(self._fd)

    def release(self) -> None:
        """Delivery failed: keep the segment for a later attempt."""
        os.close(self._fd)


class Spool:
    """Append-only JSONL segments in one folder, shared safely between processes."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None

    def append(self, lines: list[bytes]) -> None:
        """Append encoded events (one JSON object each) to this process's segment."""
        if not lines:
            return
        payload = b"".join(line + b"\n" for line in lines)
        with self._lock:
            if self._fd is None:
                self._open_segment()
            os.write(self._fd, payload)

    def _open_segment(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"spool-{os.getpid()}-{time.time_ns()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd, self._path = fd, path

    def close_segment(self) -> None:
        """Stop writing the current segment (it becomes claimable)."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = self._path = None

    def has_segments(self) -> bool:
        return self.directory.is_dir() and any(self.directory.glob("spool-*.jsonl"))

    def claim(self) -> Iterator[Segment]:
        """Segments nobody holds, oldest first, each locked until delivered or released.

        The caller's own open segment is closed first so that it is re-sent too.
        """
        self.close_segment()
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("spool-*.jsonl"), key=_segment_order):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # delivered by another process meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # still written by a live process
            if not path.exists():
                os.close(fd)
                continue
            yield Segment(path, fd)


def _segment_order(path: Path) -> tuple[int, str]:
    parts = path.stem.split("-")
    try:
        return int(parts[2]), path.name
    except (IndexError, ValueError):
        return 0, path.name
