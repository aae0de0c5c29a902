"""Great Expectations suites as Dagster asset checks.

* ``raw_events_suite`` on ``audit/reconciliation``: after staging, one row per
  landing file of the newest load: every raw row accounted for (critical),
  and files or loads with many quarantined rows (warnings naming the file
  and the fix). It reads staging's verdicts; it re-derives no rule.
* ``marts_*_suite`` on each mart that exists in the dbt project
  (``fct_conversations``, ``metrics_daily``, ``funnel_stage_daily``): run
  right after the mart is built, for what its contract and dbt tests cannot
  say. The ``fct_conversations`` and ``metrics_daily`` suites read the days
  the latest run recorded in ``audit.partitions_rewritten`` (the days of its
  ``scope_days``; every row when nothing is recorded, or with
  ``CONVO_GX_FULL_HISTORY=1``).

All are ``blocking``: a failed *critical* expectation (severity ERROR) stops
every downstream asset in the run; failed *warning* expectations give a WARN
result and let the run continue. Every validation is appended to
``audit.gx_validation_results`` with a sample of the offending rows, and the
check's metadata shows the same in the UI.
"""


from collections.abc import Sequence

import dagster as dg

from convo_warehouse.assets.dbt import dbt_models
from convo_warehouse.concurrency import WRITER_POOL, retry_when_busy
from convo_warehouse.checks import suites
from convo_warehouse.lib.warehouse import writer_lock
from convo_warehouse.resources import WarehouseResource


def check_result(
    outcome, description: str | None = None, extra_metadata: dict[str, object] | None = None
) -> dg.AssetCheckResult:
    """An asset check result from a ``SuiteOutcome``: ERROR on critical failures, else WARN."""
    severity = (
        dg.AssetCheckSeverity.ERROR if outcome.critical_failures else dg.AssetCheckSeverity.WARN
    )
    metadata: dict[str, object] = {
        "suite": outcome.suite_name,
        "validation_id": outcome.validation_id,
        "rows_validated": outcome.row_count,
        "expectations": len(outcome.expectations),
        "critical_failures": len(outcome.critical_failures),
        "warning_failures": len(outcome.warning_failures),
        "failures": dg.MetadataValue.md(outcome.failures_markdown()),
        "results_table": "audit.gx_validation_results",
    }
    if outcome.skipped_reason:
        metadata["skipped"] = outcome.skipped_reason
    for item in outcome.failed:
        metadata[f"{item.severity}: {item.label()}"] = dg.MetadataValue.json(
            {
                "why": item.why,
                "unexpected_count": item.unexpected_count,
                "unexpected_percent": item.unexpected_percent,
                "failing_rows_sample": item.failing_rows[:5],
            }
        )
    metadata.update(extra_metadata or {})
    return dg.AssetCheckResult(
        passed=outcome.passed, severity=severity, metadata=metadata, description=description
    )


def _skipped(suite_name: str, asset_key: str, reason: str):
    import datetime as dt

    from convo_warehouse.checks.validation import SuiteOutcome

    return SuiteOutcome(
        suite_name=suite_name,
        asset_key=asset_key,
        validation_id="",
        validated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        row_count=0,
        expectations=[],
        skipped_reason=reason,
    )


RECONCILIATION = dg.AssetKey(["audit", "reconciliation"])


@dg.asset_check(
    asset=RECONCILIATION,
    name="raw_events_suite",
    blocking=True,
    pool=WRITER_POOL,
    description=(
        "GX raw_events_suite on the newest load, per landing file, after staging: every raw row "
        "parsed, staged or quarantined (critical: otherwise the marts are wrong); a file with more "
        f"than {suites.RAW_FILE_WARNING_SHARE:.0%} of its rows quarantined, or a load with more than "
        f"{suites.RAW_LOAD_WARNING_SHARE:.0%}, is a warning naming the file and the fix (the good "
        "files are staged and the marts built)."
    ),
)
def raw_events_suite_check(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    from convo_warehouse.checks.validation import store_outcome, validate
    from convo_warehouse.lib.warehouse import table_exists

    files_to_fix: list[str] = []
    with retry_when_busy(context), writer_lock(warehouse.database), warehouse.connect() as con:
        missing = [name for name in suites.RAW_EVENTS_READS if not table_exists(con, name)]
        if missing:
            outcome = _skipped(
                suites.RAW_EVENTS_SUITE, "audit/reconciliation", f"missing table(s): {', '.join(missing)}"
            )
        else:
            frame = con.execute(suites.RAW_EVENTS_QUERY).df()
            outcome = validate(
                suites.raw_events_suite(), frame, "audit/reconciliation", suites.RAW_EVENTS_INDEX
            )
            store_outcome(con, outcome, context.run.run_id)
            files_to_fix = suites.raw_files_to_fix(frame)
    context.log.info(outcome.summary())
    for line in files_to_fix:
        context.log.warning(line)
    extra = (
        {"files_to_fix": dg.MetadataValue.md("\n".join(f"- {line}" for line in files_to_fix))}
        if files_to_fix
        else None
    )
    return check_result(outcome, "\n".join(files_to_fix) or None, extra)


def _mart_check(mart: suites.MartSuite) -> dg.AssetChecksDefinition:
    asset_key = dg.AssetKey([mart.schema, mart.table])
    suite_name = f"marts_{mart.table}_suite"

    @dg.asset_check(
        asset=asset_key,
        name=suite_name,
        blocking=True,
        pool=WRITER_POOL,
        description=(
            f"GX {suite_name} on {mart.schema}.{mart.table} after it is built "
            "(critical failures block downstream assets; warnings are reported)."
        ),
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        from convo_warehouse.checks.validation import full_history_from_env, store_outcome, validate_mart

        key = "/".join(asset_key.path)
        with retry_when_busy(context), writer_lock(warehouse.database), warehouse.connect() as con:
            outcome, missing = validate_mart(con, mart, full_history_from_env())
            if outcome is None:
                outcome = _skipped(suite_name, key, f"missing table(s): {', '.join(missing)}")
            else:
                store_outcome(con, outcome, context.run.run_id)
        context.log.info(outcome.summary())
        return check_result(outcome)

    return _check


def _mart_checks(existing_keys: Sequence[dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    existing = set(existing_keys)
    return [
        _mart_check(mart)
        for mart in suites.MART_SUITES
        if dg.AssetKey([mart.schema, mart.table]) in existing
    ]


gx_asset_checks: list[dg.AssetChecksDefinition] = [
    raw_events_suite_check,
    *_mart_checks(list(dbt_models.keys)),
]

__all__ = ["check_result", "gx_asset_checks"]
