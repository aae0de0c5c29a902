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


class LineCheck:
    """Whether DuckDB's line reader can read a JSONL stream, fed block by block: no lone carriage
    return (a CRLF line end included), no line over ``max_line_bytes``. What it cannot read goes
    straight to the Python reader. Two searches for a newline per block: cheap beside the hash.

    Invalid UTF-8 is not looked for here: DuckDB's reader rejects it (a truncated, overlong or
    surrogate sequence too), and a file it rejects goes to the Python reader at once. Decoding every
    block to find it cost more than hashing the file.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self.problem: str | None = None
        self._line = 0  # bytes of the current line so far

    def feed(self, block: bytes) -> None:
        if self.problem is not None or not block:
            return
        if b"\r" in block:  # DuckDB's line reader (new_line '\n', strict) fails on \r\n line ends too
            self.problem = "a carriage return"
            return
        last = block.rfind(b"\n")
        if last < 0:
            self._line += len(block)
        else:
            # a line inside one block is shorter than the block (blocks are at most 1 MiB): only a
            # line running across blocks can be over the limit
            if self._line + block.find(b"\n") > self.max_line_bytes:
                self.problem = f"a line over {self.max_line_bytes:,} bytes"
                return
            self._line = len(block) - last - 1
        if self._line > self.max_line_bytes:
            self.problem = f"a line over {self.max_line_bytes:,} bytes"

    def finish(self) -> str | None:
        return self.problem


def line_problem(path: Path, max_line_bytes: int) -> str | None:
    """Why DuckDB's line reader cannot read a plain JSONL file, or None (``LineCheck``)."""
    check = LineCheck(max_line_bytes)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            check.feed(block)
            if check.problem:
                break
    return check.finish()


def gzip_problem(path: Path, check: LineCheck | None = None) -> str | None:
    """Why a gzip file is broken (truncated, or failing its checksum), or None when it is whole; with
    ``check``, also why its lines cannot be read by DuckDB.

    DuckDB's readers end a truncated gzip stream quietly, as if the file
    ended there: the file is decompressed once here to tell.
    """
    decompressor = zlib.decompressobj(wbits=31)
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                while block:
                    inflated = decompressor.decompress(block, 1 << 20)
                    if check is not None:
                        check.feed(inflated)
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
    return check.finish() if check is not None else None


def content_hash(path: Path, check: LineCheck | None = None) -> str:
    """The SHA-256 of the file's bytes; ``check`` is fed the same blocks (one read for both)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            if check is not None:
                check.feed(block)
    return digest.hexdigest()
