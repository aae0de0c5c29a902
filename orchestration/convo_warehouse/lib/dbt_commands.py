"""Every dbt command the pipeline runs, built in one place.

Dagster's dbt asset, ``ensure_manifest`` and the Spark runner take their
arguments from here, so a production run means one thing everywhere. dbt
reads the warehouse from ``CONVO_DUCKDB_PATH`` (``profiles.yml``), which the
entry points (``convo-warehouse run``, ``make ui``, the shell of a deployed
Dagster) set once for the process; nothing changes ``os.environ`` while a
run is under way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

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
    if "DBT_WRITE_JSON" not in os.environ:
        # no manifest.json and run_results.json written when the build ends: a second or more of
        # serialising the whole project, whatever the build did. What the build did is in its
        # dbt.log (build_results); the manifest a build ran from is the project's (lib/dbt_state.py
        # keeps it). DBT_WRITE_JSON=true brings them back.
        args += ["--no-write-json"]
    # Which tests an excluded node takes with it. A view or a seed left out of the build
    # (lib/dbt_state.py) is not rebuilt, but a view's rows follow its inputs: "cautious" leaves
    # out only the tests whose every parent is left out, so a test that also reads a model this
    # build writes (the new loads' rows of stg_events, the quarantine, the reconciliation) runs;
    # dbt's default, "eager", drops every test of a left-out node.
    args += ["--indirect-selection", "buildable" if multi_step else "cautious"]
    if select:
        args += ["--select", " ".join(select)]
    args += ["--exclude", " ".join([GRAIN_TESTS, *exclude])]
    return args


#: dbt's structured log events that close a node, and the one that closes the run.
NODE_RESULT_EVENTS = frozenset({"LogModelResult", "LogSeedResult", "LogTestResult", "LogSnapshotResult"})
FINISHED_EVENT = "FinishedRunningStats"


def build_results(log_file: Path) -> tuple[float | None, list[tuple[str, str, float]]]:
    """What the dbt command that wrote ``log_file`` (its ``dbt.log``, JSON lines) did: its elapsed
    seconds (None if it did not finish) and (unique id, status, seconds) per node it ran."""
    elapsed, results = None, []
    for line in log_file.read_text().splitlines():
        if not line.startswith("{"):
            continue  # a log in text format, or a line another writer left
        event = json.loads(line)
        name, data = event["info"]["name"], event["data"]
        if name in NODE_RESULT_EVENTS:
            results.append((data["node_info"]["unique_id"], data["status"], data["execution_time"]))
        elif name == FINISHED_EVENT:
            elapsed = data["execution_time"]
    return elapsed, results


def parse() -> list[str]:
    """``dbt parse``: the manifest Dagster's definitions are built from."""
    return ["parse", "--quiet"]
