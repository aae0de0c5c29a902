"""Landing files -> ``raw.events``: the loader as a Dagster asset.

The loader also decides whether the run has anything to do: when it loaded
nothing and the last complete run of this job built from the same load and
the same project files, seeds, vars and settings (``lib/run_state.py``), it
materializes nothing, so every downstream step of the run is skipped.
With ``CONVO_TARGET=spark`` Spark loads the folder into its own raw tables.
"""

import dagster as dg

from convo_warehouse.concurrency import LOADER_RETRY_POLICY, WRITER_POOL, retry_when_busy
from convo_warehouse.lib.landing import load_landing
from convo_warehouse.lib.run_state import build_fingerprint, build_verdict, record_run_started
from convo_warehouse.lib.warehouse import writer_lock
from convo_warehouse.resources import WarehouseResource
from convo_warehouse.spark.target import on_spark, run_spark_step

RAW_EVENTS = dg.AssetKey(["raw", "events"])
RAW_LOADED_FILES = dg.AssetKey(["raw", "loaded_files"])


@dg.multi_asset(
    name="load_landing_files",
    specs=[
        dg.AssetSpec(
            key=RAW_EVENTS,
            group_name="ingest",
            kinds={"python", "duckdb"},
            description=(
                "One row per raw row read from a landing file (JSONL, JSONL.gz, Parquet, CSV), "
                "with its source file, row number and load run. Each file (by content hash) "
                "is loaded once; unreadable lines are kept with their parse error."
            ),
            skippable=True,
        ),
        dg.AssetSpec(
            key=RAW_LOADED_FILES,
            group_name="ingest",
            kinds={"python", "duckdb"},
            description="One row per landing file loaded: path, content hash, format, load run.",
            skippable=True,
        ),
    ],
    pool=WRITER_POOL,
    retry_policy=LOADER_RETRY_POLICY,
)
def load_landing_files(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Load every landing file not loaded before into ``raw.events``; skip the run if up to date."""
    landing = warehouse.landing
    if on_spark():
        # Spark reads the landing folder itself (docs/spark.md); the run-state
        # skip is DuckDB's bookkeeping, so a Spark run always builds.
        summary = run_spark_step(["load", "--landing", str(landing)])
        context.log.info(summary)
        yield dg.MaterializeResult(
            asset_key=RAW_EVENTS,
            metadata={"engine": "spark", "summary": summary, "landing_dir": str(landing)},
        )
        yield dg.MaterializeResult(asset_key=RAW_LOADED_FILES, metadata={"engine": "spark"})
        return
    context.log.info(f"loading new files from {landing} into {warehouse.database}")
    fingerprint = build_fingerprint()
    with retry_when_busy(context), writer_lock(warehouse.database), warehouse.connect() as con:
        report = load_landing(con, landing, progress=True)
        context.log.info(report.summary())
        verdict = build_verdict(con, context.job_name, fingerprint)
        if verdict.up_to_date:
            context.log.info(f"{verdict.reason}: every later step of this run is skipped")
            return
        record_run_started(con, context.run.run_id, context.job_name, fingerprint)
        total_rows, total_files = con.execute(
            "select (select count(*) from raw.events), (select count(*) from raw.loaded_files)"
        ).fetchone()
    yield dg.MaterializeResult(
        asset_key=RAW_EVENTS,
        metadata={
            "load_id": report.load_id,
            "files_loaded": len(report.files_loaded),
            "files_skipped": len(report.files_skipped),
            "rows_loaded": report.rows_loaded,
            "unreadable_rows": report.unreadable_rows,
            "total_raw_rows": total_rows,
            "new_files": dg.MetadataValue.md(
                "\n".join(f"- `{name}`" for name in report.files_loaded[:50]) or "(none)"
            ),
            "landing_dir": str(landing),
            "warehouse": str(warehouse.database),
        },
    )
    yield dg.MaterializeResult(
        asset_key=RAW_LOADED_FILES,
        metadata={"files_loaded": len(report.files_loaded), "total_files": total_files},
    )
