"""One writer at a time: the pool, run tags and retries shared by all writing steps.

DuckDB allows one writing process per file. Three layers keep it that way:

* every run of our jobs carries the tag ``convo_warehouse/writer=duckdb``; the
  instance's ``dagster.yaml`` (see ``make ui``) allows one such run at a time,
  so a second run waits in the queue instead of failing;
* every step that writes is in the ``duckdb_writer`` concurrency pool (limit 1),
  which also covers ad-hoc materializations launched from the asset graph;
* each step takes the warehouse's writer lock (``lib/warehouse.writer_lock``),
  which also keeps out a ``convo-warehouse run`` started from a shell. A busy
  warehouse is retried with exponential backoff (``retry_when_busy``).
"""

import contextlib
from collections.abc import Iterator

import dagster as dg
import duckdb

from convo_warehouse.lib.warehouse import WarehouseBusyError, busy_message, warehouse_path

WRITER_POOL = "duckdb_writer"
WRITER_TAG_KEY = "convo_warehouse/writer"
WRITER_TAGS = {WRITER_TAG_KEY: "duckdb"}

# Busy warehouse: retry after 5 s, 10 s, 20 s, 40 s.
BUSY_MAX_RETRIES = 4
BUSY_FIRST_WAIT_SECONDS = 5

# The loader also retries on any error (a file still being copied into the
# landing folder can be unreadable for a moment): after ~3 s and ~6 s, with
# +-50 % jitter. Loading is idempotent (files are known by content hash), so a
# retry never loads a file twice.
LOADER_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2,
    delay=3,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)

_BUSY_MARKERS = ("could not set lock", "conflicting lock", "warehouse is busy")


def is_busy_error(error: BaseException) -> bool:
    """Whether ``error`` means another process holds the warehouse."""
    if isinstance(error, WarehouseBusyError):
        return True
    text = str(error).lower()
    return isinstance(error, duckdb.IOException | dg.Failure | RuntimeError) and any(
        marker in text for marker in _BUSY_MARKERS
    )


def explain_busy(error: BaseException) -> str:
    """The busy error in words: who holds the warehouse (writer or readers, which process), what to do."""
    if isinstance(error, WarehouseBusyError):
        return str(error)
    return busy_message(warehouse_path(), "write", str(error))


def busy_retry(context, error: BaseException) -> dg.RetryRequested | WarehouseBusyError:
    """A ``RetryRequested`` with exponential backoff for the step's next attempt; after the
    last retry, a ``WarehouseBusyError`` saying who holds the warehouse (raise either)."""
    explained = explain_busy(error)
    if context.retry_number >= BUSY_MAX_RETRIES:
        return WarehouseBusyError(f"{explained} (gave up after {BUSY_MAX_RETRIES} retries)")
    wait = BUSY_FIRST_WAIT_SECONDS * 2**context.retry_number
    context.log.warning(f"warehouse busy, retrying in {wait} s: {explained}")
    return dg.RetryRequested(max_retries=BUSY_MAX_RETRIES, seconds_to_wait=wait)


@contextlib.contextmanager
def retry_when_busy(context) -> Iterator[None]:
    """Turn "the warehouse is busy" into a Dagster retry with backoff; re-raise the rest."""
    try:
        yield
    except Exception as error:
        if is_busy_error(error):
            raise busy_retry(context, error) from error
        raise
