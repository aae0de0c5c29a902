"""The SDK's on-disk spool: JSONL segments holding events not yet delivered.

Events go here when the collector is unreachable (after the retries) or the
in-memory queue is full, and are re-sent when the collector answers again.
Each process appends to its own segment (``spool-<pid>-<time>.jsonl``),
written with unbuffered appends (each looped until every byte is written) so
a crash of the process loses nothing it wrote. A segment is held with an
exclusive ``flock`` while it is written or re-sent: a segment nobody holds
belongs to a process that ended (or to this one, between writes), and any
tracker using the folder may send it. Re-sending a segment whose delivery was
cut short sends some events twice; they keep their ``event_id`` and count once
in the warehouse.

Bounded: the folder holds at most ``max_bytes``; events that would pass it
are dropped (counted by the caller, with a warning), and a segment older than
``max_age`` seconds is deleted unsent (counted too). Segments are read in
batches, never whole. Files are created ``0600`` and the folder ``0700``
(only the application's user can read what it captured).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional

from convo_capture.transport import directory_mode

log = logging.getLogger("convo_capture")


class SpoolFull(OSError):
    """Appending would pass the spool's size bound; ``dropped`` lines (the last ones) were not written."""

    def __init__(self, message: str, dropped: int) -> None:
        super().__init__(message)
        self.dropped = dropped


def write_all(fd: int, payload: bytes) -> None:
    """``os.write`` until every byte is written (a short write is not an error by itself)."""
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"write made no progress ({written} bytes)")
        view = view[written:]


class Segment:
    """A spool segment claimed for re-sending (exclusively locked)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def batches(self, size: int) -> Iterator[List[bytes]]:
        """The segment's complete lines, ``size`` at a time (a torn last line from a crash is skipped)."""
        batch: List[bytes] = []
        with open(self._fd, "rb", closefd=False) as handle:
            handle.seek(0)
            for line in handle:
                if not line.endswith(b"\n"):
                    log.warning("spool %s: skipping a torn last line (%d bytes)", self.path, len(line))
                    break
                if line.strip():
                    batch.append(line.rstrip(b"\n"))
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def count_lines(self) -> int:
        with open(self._fd, "rb", closefd=False) as handle:
            handle.seek(0)
            return sum(1 for line in handle if line.endswith(b"\n") and line.strip())

    def delivered(self) -> None:
        """Every line was acknowledged (or given up): remove the segment."""
        self.path.unlink()
        os.close(self._fd)

    def release(self) -> None:
        """Delivery failed: keep the segment for a later attempt."""
        os.close(self._fd)


class Spool:
    """Append-only JSONL segments in one folder, shared safely between processes."""

    def __init__(self, directory: Path | str, max_bytes: int = 100 * 1024 * 1024,
                 max_age: float = 7 * 24 * 3600.0, file_mode: int = 0o600) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.file_mode = file_mode
        self._lock = threading.Lock()
        self._fd: Optional[int] = None
        self._path: Optional[Path] = None

    def after_fork_in_child(self) -> None:
        """Forget the parent's segment (its lock belongs to the parent) and start afresh."""
        self._lock = threading.Lock()
        if self._fd is not None:
            try:
                os.close(self._fd)  # our copy only: the parent keeps its descriptor and lock
            except OSError:
                pass
        self._fd = self._path = None

    def append(self, lines: List[bytes]) -> None:
        """Append encoded events (one JSON object each) to this process's segment.

        Writes the lines that fit under ``max_bytes``; raises ``SpoolFull``
        naming how many did not.
        """
        if not lines:
            return
        with self._lock:
            room = self.max_bytes - self.size()
            fitting = 0
            for line in lines:
                if len(line) + 1 > room:
                    break
                room -= len(line) + 1
                fitting += 1
            if fitting:
                if self._fd is None:
                    self._open_segment()
                write_all(self._fd, b"".join(line + b"\n" for line in lines[:fitting]))
        if fitting < len(lines):
            raise SpoolFull(f"the spool {self.directory} is at its {self.max_bytes}-byte bound",
                            len(lines) - fitting)

    def size(self) -> int:
        if not self.directory.is_dir():
            return 0
        total = 0
        for path in self.directory.glob("spool-*.jsonl"):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def _open_segment(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=directory_mode(self.file_mode))
        path = self.directory / f"spool-{os.getpid()}-{time.time_ns()}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.file_mode)
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

    def is_expired(self, segment: Segment) -> bool:
        try:
            return time.time() - segment.path.stat().st_mtime > self.max_age
        except FileNotFoundError:
            return False


def _segment_order(path: Path) -> tuple:
    parts = path.stem.split("-")
    try:
        return int(parts[2]), path.name
    except (IndexError, ValueError):
        return 0, path.name
