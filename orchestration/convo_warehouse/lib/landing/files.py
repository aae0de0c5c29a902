"""Which files of the landing folder are loaded, and how a file is recognised."""

from __future__ import annotations

import hashlib
from pathlib import Path

# OTLP/JSON trace exports (one per line) first: they also end in ".jsonl".
SUFFIXES = (".otlp.jsonl", ".otlp.jsonl.gz", ".jsonl", ".jsonl.gz", ".parquet", ".csv")


class LandingError(RuntimeError):
    """The landing folder cannot be used (missing, not a folder)."""


def discover_files(landing_dir: Path) -> list[Path]:
    """Every accepted file under the landing folder, in a stable order."""
    if not landing_dir.exists():
        raise LandingError(
            f"landing folder {landing_dir} does not exist: create it and drop event files in it, "
            "or point CONVO_LANDING_DIR / --landing at the right folder."
        )
    if not landing_dir.is_dir():
        raise LandingError(f"landing path {landing_dir} is not a folder.")
    # Dot-folders and dot-files are never loaded: writers build files in
    # `.tmp/` and rename them into place, rejects and spools live in dot-folders.
    files = [
        path
        for path in landing_dir.rglob("*")
        if path.is_file()
        and path.name.lower().endswith(SUFFIXES)
        and not any(part.startswith(".") for part in path.relative_to(landing_dir).parts)
    ]
    return sorted(files, key=lambda path: path.relative_to(landing_dir).as_posix())


def file_format(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix.lstrip(".")
    raise ValueError(f"unsupported file type: {path}")


def file_signature(path: Path) -> tuple[int, int]:
    """(size in bytes, modification time in ns): tells that a file changed without reading it."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
