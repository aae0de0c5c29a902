"""Durable, rotating JSONL files in the landing folder.

Lines are appended to ``<root>/.tmp/<prefix>-<opened at>-<pid>.jsonl.part``
and fsynced before ``append`` returns, so an acknowledged event survives a
crash of the collector. A file is finished by an atomic rename into
``<root>/<subfolder>/<YYYY-MM-DD>/<prefix>-<opened at>-<pid>.jsonl`` when it
reaches ``max_bytes`` or ``max_seconds`` of age (and when the collector
stops). The loader skips dot-folders such as ``.tmp`` and ``.part`` files, so
it never sees a file being written.

The open file is held with an exclusive ``flock``. At start, a ``.part`` file
nobody holds is the leftover of a collector that died: its complete lines are
kept (they were acknowledged, or at worst will be sent again and de-duplicated)
and it is finished like any other; a torn last line is cut off.

A failed append (disk full, file-size limit, I/O error) leaves nothing behind:
the file is truncated back to where the append started, so the next append
never follows a torn fragment. After a failed ``fsync`` the kernel may have
dropped the dirty pages, so the file is not written again: it is finished (its
earlier lines were acknowledged) and the next append opens a new one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from convo_capture.transport import directory_mode, fsync_directory

from convo_warehouse.lib.file_modes import make_dirs

log = logging.getLogger("convo_warehouse.collector")


class RotatingWriter:
    def __init__(
        self,
        root: Path,
        subfolder: str,
        prefix: str,
        max_bytes: int = 64 * 1024 * 1024,
        max_seconds: float = 60.0,
        file_mode: int = 0o600,
    ) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / ".tmp"
        self.subfolder = subfolder
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        # files only the collector's user can read (they hold message text), folders to match
        self.file_mode = file_mode
        self.folder_mode = directory_mode(file_mode)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._bytes = 0
        self.files_finished = 0
        self._unfinished: list[Path] = []  # finishing failed after an fsync error: retried later

    def recover(self) -> list[Path]:
        """Finish ``.part`` files left by collectors that died; returns the finished paths."""
        finished = []
        if not self.tmp_dir.is_dir():
            return finished
        for path in sorted(self.tmp_dir.glob(f"{self.prefix}-*.jsonl.part")):
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live collector is writing it
            try:
                _cut_torn_line(fd, path)
                target = self._finish(fd, path)
            finally:
                os.close(fd)
            if target is not None:
                finished.append(target)
                log.info("collector: recovered %s -> %s", path.name, target)
        return finished

    def append(self, lines: list[bytes]) -> None:
        """Append lines and fsync; rotates first when the current file is due.

        Raises ``OSError`` when the lines could not be made durable; the file
        is then as it was before the call.
        """
        if not lines:
            return
        payload = b"".join(line + b"\n" for line in lines)
        with self._lock:
            if self._fd is not None and self._due():
                self._rotate_locked()
            if self._fd is None:
                self._open_locked()
            start = self._bytes
            try:
                _write_all(self._fd, payload)
            except OSError:
                self._undo_locked(start, "write")
                raise
            try:
                os.fsync(self._fd)
            except OSError:
                self._undo_locked(start, "fsync")
                self._abandon_locked()
                raise
            self._bytes += len(payload)

    def rotate_if_due(self) -> None:
        with self._lock:
            if self._fd is not None and self._due():
                self._rotate_locked()
            self._retry_unfinished_locked()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                self._rotate_locked()

    def _due(self) -> bool:
        return self._bytes >= self.max_bytes or time.monotonic() - self._opened_at >= self.max_seconds

    def _open_locked(self) -> None:
        make_dirs(self.tmp_dir, self.folder_mode)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.tmp_dir / f"{self.prefix}-{stamp}-{os.getpid()}.jsonl.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.file_mode)
        os.fchmod(fd, self.file_mode)  # open's mode passes through the umask: a group mode would be lost
        fcntl.flock(fd, fcntl.LOCK_EX)
        fsync_directory(self.tmp_dir)
        self._fd, self._path = fd, path
        self._opened_at = time.monotonic()
        self._bytes = 0

    def _undo_locked(self, start: int, step: str) -> None:
        """Cut what a failed append may have written (a torn fragment) off the open file."""
        try:
            os.ftruncate(self._fd, start)
        except OSError as error:
            # the file cannot be repaired: write no more to it (recovery cuts a torn tail)
            log.error("collector: %s failed and %s cannot be truncated back (%s); starting a new file",
                      step, self._path, error)
            self._abandon_locked()
            return
        log.error("collector: %s to %s failed; truncated back to its last acknowledged line", step, self._path)

    def _abandon_locked(self) -> None:
        """Stop writing the open file: finish it now if possible, else retry later."""
        if self._fd is None:
            return
        fd, path = self._fd, self._path
        self._fd = self._path = None
        try:
            self._finish(fd, path)
        except OSError as error:
            log.error("collector: cannot finish %s yet (%s); will retry", path, error)
            self._unfinished.append(path)
        finally:
            os.close(fd)

    def _retry_unfinished_locked(self) -> None:
        for path in list(self._unfinished):
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                self._unfinished.remove(path)
                continue
            try:
                _cut_torn_line(fd, path)
                self._finish(fd, path)
            except OSError:
                continue
            finally:
                os.close(fd)
            self._unfinished.remove(path)

    def _rotate_locked(self) -> None:
        fd, path = self._fd, self._path
        self._fd = self._path = None
        try:
            self._finish(fd, path)
        finally:
            os.close(fd)

    def _finish(self, fd: int, path: Path) -> Path | None:
        """Move a complete ``.part`` file to its dated folder (or delete it if empty)."""
        if os.fstat(fd).st_size == 0:
            path.unlink()
            return None
        os.fsync(fd)
        name = path.name.removesuffix(".part")
        day = name.split("-")[1][:8]  # <prefix>-<YYYYMMDD>T...-<pid>.jsonl
        folder = self.root / self.subfolder / f"{day[:4]}-{day[4:6]}-{day[6:8]}"
        make_dirs(folder, self.folder_mode)
        target = folder / name
        os.replace(path, target)
        fsync_directory(folder)
        self.files_finished += 1
        return target


def _write_all(fd: int, payload: bytes) -> None:
    """``os.write`` until every byte is written (a short write is not an error by itself)."""
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"write made no progress ({written} bytes)")
        view = view[written:]


def _cut_torn_line(fd: int, path: Path) -> None:
    """Truncate a file after its last newline (a write cut short by a crash)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    tail_start = max(0, size - (1 << 20))
    data = os.pread(fd, size - tail_start, tail_start)
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n")
    keep = tail_start + cut + 1 if cut >= 0 else 0
    if cut < 0 and tail_start > 0:
        log.warning("collector: %s ends with a line longer than 1 MiB; left as is", path)
        return
    os.ftruncate(fd, keep)
    os.fsync(fd)
    log.warning("collector: %s: cut a torn last line (%d bytes, never acknowledged)", path, size - keep)
