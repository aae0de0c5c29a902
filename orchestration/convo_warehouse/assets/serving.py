"""Publish: the read-only snapshot dashboards, BI tools and analysts read (``serving/snapshot``).

Downstream of every mart, the reconciliation and the quarantine, so it runs
last, and only when they were all built in this run and their blocking checks
(dbt tests, GX suites) passed: a failed run publishes nothing and the previous
snapshot stays current. What is written and what is shared with the previous
version, the atomic switch and pruning are in ``lib/serving.py``.
"""


import dagster as dg

# The module, not its dbt_models: load_assets_from_modules would find it here twice.
from convo_warehouse.assets import dbt as dbt_assets
from convo_warehouse.checks import alerts as alert_checks
from convo_warehouse.concurrency import WRITER_POOL, retry_when_busy
from convo_warehouse.lib import serving
from convo_warehouse.lib.warehouse import writer_lock
from convo_warehouse.resources import WarehouseResource

SNAPSHOT = dg.AssetKey(["serving", "snapshot"])
_PUBLISHED_KEYS = sorted(
    (
        key
        for key in dbt_assets.dbt_models.keys
        if key.path[0] in serving.SERVED_SCHEMAS or ".".join(key.path) in serving.SERVED_EXTRA_TABLES
    ),
    key=lambda key: key.to_user_string(),
)


def run_test_status(context: dg.AssetExecutionContext) -> dict:
    """Counts of this run's asset check results so far (dbt tests, GX suites), and the failed ones.

    The metric alerts check is left out: a fired alert is news about the
    business, not a defect of the data, and the dashboard must show it.
    """
    records = context.instance.get_records_for_run(
        run_id=context.run.run_id,
        of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        limit=100_000,
    ).records
    passed, warned, failed = 0, [], []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.check_name == alert_checks.CHECK_NAME:
            continue
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if evaluation.passed:
            passed += 1
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            warned.append(name)
        else:
            failed.append(name)
    status = "failed" if failed else ("passed_with_warnings" if warned else "passed")
    return {
        "status": status,
        "checks_passed": passed,
        "checks_warned": len(warned),
        "checks_failed": len(failed),
        "warned": sorted(warned),
        "failed": sorted(failed),
    }


@dg.asset(
    key=SNAPSHOT,
    deps=_PUBLISHED_KEYS,
    group_name="serving",
    pool=WRITER_POOL,
    description=(
        "The published read-only snapshot: every mart (plus reconciliation and quarantine reasons) in a "
        "new version folder: Parquet partitioned by day (large tables read through views over it, small "
        "ones held in its DuckDB file), day partitions that did not change shared with the versions before "
        "(written once, into the serving folder's store), a manifest of what changed; then switched "
        "atomically (CONVO_SERVING_DIR/current). Dashboards, "
        "BI tools and `convo-warehouse export` read it, never the warehouse."
    ),
)
def snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    tests = run_test_status(context)
    if tests["failed"]:
        raise dg.Failure(
            description="not publishing: checks failed in this run: " + ", ".join(tests["failed"][:10]),
            allow_retries=False,
        )
    serving_dir = serving.serving_path(warehouse=warehouse.database)
    # a line when publishing starts: the run's log (and make bench's profile)
    # then shows the publish's own time rather than adding it to the step before
    context.log.info(f"publishing the changed tables to {serving_dir} ...")
    with retry_when_busy(context), writer_lock(warehouse.database), warehouse.connect() as con:
        result = serving.publish(
            con,
            serving_dir,
            run_id=context.run.run_id,
            tests=tests,
            progress=context.log.debug,
        )
    published = result.snapshot
    changes = published.manifest.get("changes", {})
    changed = sorted(
        table for table, change in changes.get("tables", {}).items() if change["change"] != "reused"
    )
    files = changes.get("files", {})
    if result.created:
        context.log.info(
            f"published snapshot {published.version} to {serving_dir}: {len(changed)} table(s) changed; "
            f"{files.get('written', 0)} file(s) written, {files.get('linked', 0)} linked, "
            f"{files.get('copied', 0)} copied"
        )
    else:
        context.log.info(f"data unchanged: snapshot {published.version} stays current")
    if result.held:
        context.log.info(f"kept old version(s) a reader still has open: {', '.join(result.held)}")
    return dg.MaterializeResult(
        metadata={
            "version": published.version,
            "new_version": result.created,
            "path": dg.MetadataValue.path(str(published.folder)),
            "published_at": published.manifest["published_at"],
            "newest_event_at": published.manifest["newest_event_at"] or "none",
            "tables": len(published.tables),
            "rows": sum(table["rows"] for table in published.tables.values()),
            "tables_changed": ", ".join(changed) or "none",
            "files_written": files.get("written", 0),
            "files_linked": files.get("linked", 0) + files.get("copied", 0),
            "pruned_versions": ", ".join(result.pruned) or "none",
            "held_versions": ", ".join(result.held) or "none",
        }
    )
