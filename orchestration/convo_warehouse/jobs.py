"""The two jobs: hourly load-and-rebuild, and the daily build of everything.

Both run in one process (``in_process_executor`` on the Definitions): the
steps write to one DuckDB file, which allows a single writer, so running
them one after another is both required and faster than one process per step.
"""

from __future__ import annotations

import dagster as dg

from convo_warehouse.concurrency import WRITER_TAGS

RAW_EVENTS = dg.AssetKey(["raw", "events"])
RAW_LOADED_FILES = dg.AssetKey(["raw", "loaded_files"])
# the stage classifier (a dbt Python model writing stage classifications,
# message sentiment and LLM judgments): the costly step, left to the daily job
CLASSIFIER = dg.AssetKey(["classification", "classifier_runs"])
# the staging views over the classifier's tables (the `classification` dbt
# source): they read what the classifier wrote so far, downstream of no loader
CLASSIFIER_OUTPUT_VIEWS = [
    dg.AssetKey(["staging", name])
    for name in ("stg_stage_classifications", "stg_message_sentiment", "stg_conversation_judgments")
]

# New landing files -> raw -> every dbt asset downstream of raw (incremental
# models recompute only what their scope model lists: docs/incremental.md), plus
# the seeds and everything downstream of them (their staging models, which
# fill in optional columns; the dbt step leaves out what no load reaches unless
# the project's changes reach it, lib/dbt_state.py). The classifier (possibly
# an LLM, the costly part) is left to the daily job; funnel marts are rebuilt
# with the classifications made so far. Asset checks of the selected assets
# (dbt tests, GX suites, alerts) run with them.
load_and_rebuild_job = dg.define_asset_job(
    name="load_and_rebuild_job",
    selection=(
        dg.AssetSelection.assets(RAW_EVENTS, RAW_LOADED_FILES).downstream()
        | dg.AssetSelection.groups("seeds").downstream()
        | dg.AssetSelection.assets(*CLASSIFIER_OUTPUT_VIEWS)
    )
    - dg.AssetSelection.assets(CLASSIFIER),
    description="Load new landing files and rebuild what they affect (no classification).",
    tags=WRITER_TAGS,
)

# Everything: loader, seeds, every dbt model, the classifier, and all checks.
build_all_job = dg.define_asset_job(
    name="build_all_job",
    selection=dg.AssetSelection.all(),
    description="Load new files and build every asset, including stage classification.",
    tags=WRITER_TAGS,
)
