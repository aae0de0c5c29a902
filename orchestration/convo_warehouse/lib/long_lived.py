"""Python's cyclic garbage collector while a process builds what it keeps until it ends.

A run's process, its dbt server and each dbt it starts spend their first seconds
building objects that live as long as the process: modules (Dagster, dbt,
SQLAlchemy, SciPy), Dagster's definitions and instance, dbt's parsed manifest.
The collector, triggered by the count of allocations, walks everything allocated
so far again and again meanwhile, and finds nothing to free
(benchmarks/results/2026-12-02-start-gc.md). ``long_lived()`` switches it off
while such objects are built, then moves them out of its sight (``gc.freeze``)
and switches it back on, so its later collections walk only what the work
allocates. The price: the cycles such a start leaves behind are kept until
the process ends (a dbt parse from scratch, whose process reaches no node and
so collects nothing, peaks higher and ends sooner).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def long_lived() -> Iterator[None]:
    """The collector off inside; on leaving, what exists is frozen and the collector is as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
