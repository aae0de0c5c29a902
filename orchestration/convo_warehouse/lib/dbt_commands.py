"""Every dbt command the pipeline runs, built in one place.

Dagster's dbt asset, ``ensure_manifest`` and the Spark runner take their
arguments from here, so a production run means one thing everywhere. dbt
reads the warehouse from ``CONVO_DUCKDB_PATH`` (``profiles.yml``), which the
entry points (``convo-warehouse run``, ``make ui``, the shell of a deployed
Dagster) set once for the process; nothing changes ``os.environ`` while a
run is under way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

# The grain tests (tests/dbt/generic/test_grain.sql) read whole tables: `make
# dbt-test` and CI run them; production runs, and so the Dagster assets' checks,
# leave them out.
GRAIN_TESTS = "tag:grain"


def production_build(
    *, multi_step: bool = False, select: Iterable[str] = (), exclude: Iterable[str] = ()
) -> list[str]:
    """``dbt build`` as a production run: models, seeds and data tests, but no unit
    tests and no grain tests.

    dbt unit tests check our SQL against fixtures; the grain tests
    (tests/dbt/generic/test_grain.sql) read whole tables, and the
    replace_scope strategy checks an incremental model's grain on every row a
    run inserts. Both run in ``make test`` and CI, which check every model's
    grain. ``multi_step``: the build is split into several dbt invocations (on
    Spark, around the Python models run outside dbt), so each must only run
    the tests whose every parent it builds or has built: dbt's "buildable"
    indirect selection (the default, "eager", would test a model a later step
    builds). ``exclude``: the nodes left out (what no load reaches, unless the
    project's changes rebuild it: lib/dbt_state.py; what a Dagster step does not
    select: assets/dbt.py). ``select``: what it selects (all when empty).
    """
    args = ["build", "--exclude-resource-type", "unit_test"]
    if "DBT_LOG_LEVEL_FILE" not in os.environ:
        # dbt.log at info (node starts, results, warnings, errors) rather than
        # debug, which also writes every SQL statement of every node, and
        # formatting them is a real share of dbt's CPU. The SQL each node ran
        # stays in target/.../run/; DBT_LOG_LEVEL_FILE=debug brings it back.
        args += ["--log-level-file", "info"]
    if multi_step:
        args += ["--indirect-selection", "buildable"]
    if select:
        args += ["--select", " ".join(select)]
    args += ["--exclude", " ".join([GRAIN_TESTS, *exclude])]
    return args


def parse() -> list[str]:
    """``dbt parse``: the manifest Dagster's definitions are built from."""
    return ["parse", "--quiet"]
