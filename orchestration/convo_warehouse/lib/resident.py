"""A resident runner: one process that runs the pipeline again each time its inputs change.

``convo-warehouse run --every SECONDS`` (DuckDB) and ``python -m convo_warehouse.spark run
--every SECONDS`` stay up between runs, so every run after the first finds what the process
started once: Dagster's definitions and the dbt server (DuckDB), the Spark JVM (Spark).
Every ``SECONDS`` the runner compares the run's inputs (``run_inputs``: every landing file's
path, size and modification time, and ``run_state.build_fingerprint``: the project's files,
the stage rules, the settings) with those of the last run that succeeded, and runs when they
differ. A failed run is reported and tried again at the next check; after
``RESIDENT_FAILURES_LIMIT`` failures in a row the runner stops with an error, since what fails
may be the process itself, which a fresh one (a supervisor's restart) replaces.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

RESIDENT_FAILURES_LIMIT = 3


def every_option(kept: str):
    """The ``--every SECONDS`` option of a ``run`` command; ``kept``: what its runs share."""
    import click

    return click.option(
        "--every",
        type=click.FloatRange(min=1),
        default=None,
        metavar="SECONDS",
        help="Stay running: every SECONDS, run again if a landing file, the project or a setting changed "
        f"since the last run. {kept} Stops on SIGTERM (after the run in progress) or Ctrl-C.",
    )


def run_inputs(landing_dir: Path, project_dir: Path) -> tuple:
    """What the runner compares before each run: every landing file's path, size and modification
    time, and the build's other inputs (``run_state.build_fingerprint``)."""
    from convo_warehouse.lib.landing import discover_files, file_signature
    from convo_warehouse.lib.run_state import build_fingerprint

    files = tuple(
        (path.relative_to(landing_dir).as_posix(), *file_signature(path)) for path in discover_files(landing_dir)
    )
    return files, build_fingerprint(project_dir)


def run_every(
    seconds: float,
    stop: threading.Event,
    run: Callable[[], str | None],
    inputs: Callable[[], object],
    failure: type[Exception] = RuntimeError,
) -> None:
    """``run()`` now, then after each ``seconds`` when ``inputs()`` differs from what it was
    before the last run that succeeded, until ``stop`` is set (the run in progress finishes
    first). Prints what each run returns; raises ``failure`` after ``RESIDENT_FAILURES_LIMIT``
    failed runs in a row."""
    done, failures = None, 0
    while not stop.is_set():
        current = inputs()
        if current != done:
            try:
                message = run()
            except Exception as error:  # any step's error: the runner outlives it, the next check retries
                failures += 1
                if failures >= RESIDENT_FAILURES_LIMIT:
                    raise failure(f"{failures} runs in a row failed; the last: {error}") from error
                print(f"error: {error} (run again in {seconds:g} s)", file=sys.stderr, flush=True)
            else:
                if message:
                    print(message, flush=True)
                done, failures = current, 0
        stop.wait(seconds)
