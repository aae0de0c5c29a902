"""One writer at a time: the pool, run tags and retry policy shared by all writing steps.

DuckDB allows one writing process per file. Three layers keep it that way:

* every run of our jobs carries the tag ``convo_warehouse/writer=duckdb``; the
  instance's ``dagster.yaml`` (see ``make ui``) allows one such run at a time,
  so a second run waits in the queue instead of failing;
* every step that writes is in the ``duckdb_writer`` concurrency pool (limit 1),
  which also covers ad-hoc materializations launched from the asset graph;
* each step takes the warehouse's writer lock (``lib/warehouse.writer_lock``),
  which also keeps out a ``convo-warehouse run`` started from a shell. A busy
  warehouse is retried with exponential backoff.
"""

from __future__ import annotations

import dagster as dg

WRITER_POOL = "duckdb_writer"
WRITER_TAG_KEY = "convo_warehouse/writer"
WRITER_TAGS = {WRITER_TAG_KEY: "duckdb"}

# Transient failures (the warehouse is busy, a file is still being written):
# retry after ~2 s, ~4 s, ~8 s (+-50 % jitter so two waiting runs do not collide).
TRANSIENT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3,
    delay=2,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)
