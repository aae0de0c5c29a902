"""Who may read the files we write that hold message text: the owner only, unless configured.

``CONVO_FILE_MODE`` (octal, default ``600``) is the mode of every such file;
folders we create get the same bits plus the search (execute) bit wherever
the mode gives read access (``600`` -> ``700``, ``640`` -> ``750``). The
mode is set with chmod, so the process umask can make nothing looser. Set
``CONVO_FILE_MODE=640`` (and a group) when a BI tool runs as another user.

Files other programs create for us (DuckDB's write-ahead log, which it
deletes at each checkpoint and creates again with the umask's mode; dbt's
and Dagster's files) follow the mode through the process umask, which every
``convo-warehouse`` command sets (``apply_umask``): ``600`` -> umask ``077``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

FILE_MODE_ENV = "CONVO_FILE_MODE"
DEFAULT_FILE_MODE = 0o600


def file_mode(environ: Mapping[str, str] | None = None) -> int:
    """The mode for files, from ``CONVO_FILE_MODE``; a clear error when it is no octal mode."""
    value = (os.environ if environ is None else environ).get(FILE_MODE_ENV, "").strip()
    if not value:
        return DEFAULT_FILE_MODE
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777 or not mode & stat.S_IRUSR or not mode & stat.S_IWUSR:
        raise ValueError(
            f"{FILE_MODE_ENV}={value!r} is not a file mode: give three octal digits that let the owner "
            "read and write, such as 600 (owner only, the default) or 640 (owner and group may read)."
        )
    return mode


def dir_mode(environ: Mapping[str, str] | None = None) -> int:
    """The mode for folders: the file mode plus search wherever it grants read."""
    mode = file_mode(environ)
    for read, search in ((stat.S_IRUSR, stat.S_IXUSR), (stat.S_IRGRP, stat.S_IXGRP), (stat.S_IROTH, stat.S_IXOTH)):
        if mode & read:
            mode |= search
    return mode


def make_dirs(folder: Path, mode: int | None = None) -> list[Path]:
    """Create ``folder`` and any missing parents with ``mode`` (default: the folder mode), set by chmod
    (mkdir's mode passes through the umask); existing ones are left as they are. Returns the folders
    created, outermost first."""
    missing = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        missing.append(parent)
    folder.mkdir(parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, dir_mode() if mode is None else mode)
    return missing[::-1]


def restrict(path: Path) -> None:
    """Give ``path`` the file mode, or the folder mode to it and everything under it."""
    if path.is_dir() and not path.is_symlink():
        children = [child for child in path.rglob("*") if not child.is_symlink()]
        apply(
            files=[child for child in children if not child.is_dir()],
            folders=[path, *(child for child in children if child.is_dir())],
        )
    else:
        apply(files=[path], folders=[])


def apply(files: Iterable[Path], folders: Iterable[Path]) -> None:
    """Give each of ``files`` the file mode and each of ``folders`` the folder mode (paths known already)."""
    files_mode, folders_mode = file_mode(), dir_mode()
    for path in files:
        os.chmod(path, files_mode)
    for path in folders:
        os.chmod(path, folders_mode)


def umask_for_mode(environ: Mapping[str, str] | None = None) -> int:
    """The umask under which new files get at most the file mode and folders the folder mode."""
    return 0o777 & ~dir_mode(environ)


def apply_umask() -> None:
    """Set the process umask from ``CONVO_FILE_MODE`` (files others create for us follow it)."""
    os.umask(umask_for_mode())


def protect_database(path: Path, folder_is_ours: bool) -> None:
    """A DuckDB file and its write-ahead log get the file mode; its folder the folder mode when it is
    one of ours (the default ``data/``; never a folder such as /tmp that a user pointed us into)."""
    apply(files=[candidate for candidate in (path, Path(f"{path}.wal")) if candidate.exists()],
          folders=[path.parent] if folder_is_ours else [])


def fsync_path(path: Path) -> None:
    """fsync a file, or a folder: a new entry or a rename is durable once its folder is fsynced."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
