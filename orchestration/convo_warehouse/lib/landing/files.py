"""Which files of the landing folder are loaded, and how a file is recognised."""

from __future__ import annotations

import hashlib
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# OTLP/JSON trace exports (one per line) first: they also end in ".jsonl".
SUFFIXES = (".otlp.jsonl", ".otlp.jsonl.gz", ".jsonl", ".jsonl.gz", ".parquet", ".csv")


class LandingError(RuntimeError):
    """The landing folder cannot be used (missing, not a folder)."""


@dataclass
class Discovery:
    """The landing files to consider, and the links refused (they point outside the folder)."""

    files: list[Path] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def discover(landing_dir: Path) -> Discovery:
    """Every accepted file under the landing folder, in a stable order.

    Dot-folders and dot-files are never loaded: writers build files in
    `.tmp/` and rename them into place, rejects and spools live in
    dot-folders. A symbolic link is followed only when its target is inside
    the landing folder: a link to anything outside (another user's files,
    /etc) is refused, named in the load report and logged.
    """
    if not landing_dir.exists():
        raise LandingError(
            f"landing folder {landing_dir} does not exist: create it and drop event files in it, "
            "or point CONVO_LANDING_DIR / --landing at the right folder."
        )
    if not landing_dir.is_dir():
        raise LandingError(f"landing path {landing_dir} is not a folder.")
    root = landing_dir.resolve()
    found = Discovery()
    for path in landing_dir.rglob("*"):
        relative = path.relative_to(landing_dir)
        if not path.name.lower().endswith(SUFFIXES) or any(part.startswith(".") for part in relative.parts):
            continue
        if not path.resolve().is_relative_to(root):
            log.warning("landing file %s links outside the landing folder %s: not loaded", relative, root)
            found.refused.append(relative.as_posix())
        elif path.is_file():
            found.files.append(path)
    found.files.sort(key=lambda path: path.relative_to(landing_dir).as_posix())
    found.refused.sort()
    return found


def discover_files(landing_dir: Path) -> list[Path]:
    """The landing files to consider (``discover(...).files``)."""
    return discover(landing_dir).files


def duckdb_path(path: Path) -> str:
    """``path`` as DuckDB's file readers take it literally.

    ``read_json``, ``read_csv`` and ``read_parquet`` expand ``*``, ``?`` and
    ``[...]`` as a glob, so ``events[1].jsonl`` would read ``events1.jsonl``
    instead; each of those characters becomes a one-character class.
    """
    return str(path).replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")


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


# Stand-in hashes of files that could not be opened start with this.
UNOPENABLE = "unopenable:"


def unopenable_hash(relative: str, error: OSError) -> str:
    """The stand-in hash of a file that cannot be opened: the same for the same path and error."""
    return UNOPENABLE + hashlib.sha256(f"{relative}\0{type(error).__name__}".encode()).hexdigest()


def gzip_problem(path: Path) -> str | None:
    """Why a gzip file is broken (truncated, or failing its checksum), or None when it is whole.

    DuckDB's readers end a truncated gzip stream quietly, as if the file
    ended there: the file is decompressed once here to tell.
    """
    decompressor = zlib.decompressobj(wbits=31)
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                while block:
                    decompressor.decompress(block, 1 << 20)
                    block = decompressor.unconsumed_tail
                    if decompressor.eof:
                        # a second gzip member follows the first one
                        block = decompressor.unused_data + block
                        if not block.strip(b"\0"):
                            break
                        decompressor = zlib.decompressobj(wbits=31)
    except zlib.error as error:
        return f"corrupt gzip data: {error}"
    if not decompressor.eof:
        return "the gzip stream ends before its end: the file is truncated"
    return None


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
