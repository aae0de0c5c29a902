"""Run a GX suite on a DataFrame, summarise it, and keep the results in DuckDB.

No Dagster here. ``validate`` returns a ``SuiteOutcome`` a person can act on:
which expectations failed, at which severity, how many rows, and a sample of
the offending rows (named by the table's key columns). ``store_outcome``
appends it to ``audit.gx_validation_results`` (one row per expectation).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from convo_warehouse.checks.suites import CRITICAL, WARNING, MartSuite
from convo_warehouse.lib.warehouse import table_exists

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

# Offending rows kept per expectation.
SAMPLE_ROWS = 20

RESULTS_DDL = """
create schema if not exists audit;
create table if not exists audit.gx_validation_results (
    validation_id varchar not null,
    validated_at timestamp not null,
    run_id varchar,
    suite_name varchar not null,
    asset_key varchar not null,
    expectation_type varchar not null,
    column_name varchar,
    expectation_kwargs varchar,
    severity varchar not null,
    why varchar,
    success boolean not null,
    element_count bigint,
    unexpected_count bigint,
    unexpected_percent double,
    observed_value varchar,
    failing_rows_sample varchar
);
"""


@dataclass
class ExpectationOutcome:
    expectation_type: str
    column: str | None
    kwargs: dict[str, Any]
    severity: str
    why: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: Any
    failing_rows: list[dict[str, Any]] = field(default_factory=list)

    def label(self) -> str:
        target = self.column or ", ".join(
            str(self.kwargs[key]) for key in ("column_A", "column_B") if key in self.kwargs
        )
        return f"{self.expectation_type}({target})"


@dataclass
class SuiteOutcome:
    suite_name: str
    asset_key: str
    validation_id: str
    validated_at: dt.datetime
    row_count: int
    expectations: list[ExpectationOutcome]
    skipped_reason: str | None = None

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.expectations if not outcome.success]

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.failed if outcome.severity == CRITICAL]

    @property
    def warning_failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.failed if outcome.severity != CRITICAL]

    @property
    def passed(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        if self.skipped_reason:
            return f"{self.suite_name}: skipped ({self.skipped_reason})"
        return (
            f"{self.suite_name} on {self.asset_key}: {len(self.expectations)} expectations over "
            f"{self.row_count} rows, {len(self.critical_failures)} critical and "
            f"{len(self.warning_failures)} warning failures"
        )

    def failures_markdown(self) -> str:
        """A table of failed expectations with a few offending rows each."""
        if not self.failed:
            return "all expectations passed"
        lines = ["| severity | expectation | why | unexpected | sample rows |", "|---|---|---|---|---|"]
        for outcome in self.failed:
            sample = "; ".join(
                json.dumps(row, default=str, sort_keys=True) for row in outcome.failing_rows[:3]
            )
            lines.append(
                f"| {outcome.severity} | `{outcome.label()}` | {outcome.why} | "
                f"{outcome.unexpected_count} ({(outcome.unexpected_percent or 0):.2f} %) | "
                f"{sample.replace('|', '/')} |"
            )
        return "\n".join(lines)


_CONTEXT: Any = None


def _context() -> Any:
    """One ephemeral GX context per process, progress bars off."""
    global _CONTEXT
    if _CONTEXT is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(
            globally=False, metric_calculations=False
        )
        _CONTEXT = context
    return _CONTEXT


def _plain(value: Any) -> Any:
    """JSON-friendly scalars (numpy, pandas NaN/NaT, timestamps)."""
    try:
        import pandas as pd

        if value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value)):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item") and not isinstance(value, list | dict):
        try:
            return value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def validate(
    suite: gx.ExpectationSuite,
    frame: pd.DataFrame,
    asset_key: str,
    index_columns: list[str] | tuple[str, ...],
) -> SuiteOutcome:
    """Validate ``frame`` against ``suite``; offending rows named by ``index_columns``."""
    context = _context()
    name = f"{suite.name}_{uuid.uuid4().hex[:8]}"
    source = context.data_sources.add_pandas(name)
    batch_definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
    try:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            suite,
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": list(index_columns),
                "partial_unexpected_count": SAMPLE_ROWS,
            },
        )
    finally:
        context.data_sources.delete(name)
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        kwargs = {
            key: _plain(value)
            for key, value in dict(config.kwargs).items()
            if key not in ("batch_id", "result_format")
        }
        meta = dict(config.meta or {})
        details = dict(item.result or {})
        exception = item.exception_info or {}
        raised = bool(exception.get("raised_exception")) if isinstance(exception, dict) else False
        rows = [
            {key: _plain(value) for key, value in dict(row).items()}
            for row in details.get("partial_unexpected_index_list") or []
        ]
        observed = details.get("observed_value")
        if raised:
            observed = f"error: {exception.get('exception_message')}"
        outcomes.append(
            ExpectationOutcome(
                expectation_type=config.type,
                column=kwargs.get("column"),
                kwargs=kwargs,
                severity=meta.get("severity", CRITICAL if meta.get("critical") else WARNING),
                why=meta.get("why", ""),
                success=bool(item.success) and not raised,
                element_count=_plain(details.get("element_count")),
                unexpected_count=_plain(details.get("unexpected_count")),
                unexpected_percent=_plain(details.get("unexpected_percent")),
                observed_value=_plain(observed),
                failing_rows=rows[:SAMPLE_ROWS],
            )
        )
    return SuiteOutcome(
        suite_name=suite.name,
        asset_key=asset_key,
        validation_id=uuid.uuid4().hex,
        validated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        row_count=len(frame),
        expectations=outcomes,
    )


def store_outcome(
    con: duckdb.DuckDBPyConnection, outcome: SuiteOutcome, run_id: str | None = None
) -> None:
    """Append one row per expectation to ``audit.gx_validation_results``."""
    con.execute(RESULTS_DDL)
    rows = [
        (
            outcome.validation_id,
            outcome.validated_at,
            run_id,
            outcome.suite_name,
            outcome.asset_key,
            item.expectation_type,
            item.column,
            json.dumps(item.kwargs, default=str, sort_keys=True),
            item.severity,
            item.why,
            item.success,
            item.element_count,
            item.unexpected_count,
            item.unexpected_percent,
            None if item.observed_value is None else json.dumps(item.observed_value, default=str),
            json.dumps(item.failing_rows, default=str) if item.failing_rows else None,
        )
        for item in outcome.expectations
    ]
    if rows:
        con.executemany(
            "insert into audit.gx_validation_results values "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


# Set to 1 to validate every row of a day-partitioned mart, not only the days
# its latest build rewrote.
FULL_HISTORY_ENV = "CONVO_GX_FULL_HISTORY"


def full_history_from_env() -> bool:
    return os.environ.get(FULL_HISTORY_ENV, "0").lower() in ("1", "true", "yes")


def rewritten_by_latest_build(
    con: duckdb.DuckDBPyConnection, relation: str, day_column: str, full_history: bool = False
) -> str:
    """A condition on ``day_column``: the days ``relation``'s latest run rewrote.

    The rows of the newest ``recorded_at`` of that relation in
    ``audit.partitions_rewritten`` (macros/incremental/run_ledgers.sql: a
    complete run records the days of scope_days for every incremental model
    as it ends, and a build that writes the whole table records a
    ``rewrote_all`` row before it starts): ``true`` (every row) when nothing
    is recorded, when those rows say the whole table, and with
    ``full_history``. A model a run built whole gets no day rows from that
    run, so its newest row is the ``rewrote_all`` one and it is read whole.
    """
    if full_history or not table_exists(con, "audit.partitions_rewritten"):
        return "true"
    rows = con.execute(
        "select rewritten.partition_date, rewritten.rewrote_all from audit.partitions_rewritten as rewritten "
        "where rewritten.relation_name = ? and rewritten.recorded_at = ("
        "select max(newest.recorded_at) from audit.partitions_rewritten as newest "
        "where newest.relation_name = ?)",
        [relation, relation],
    ).fetchall()
    if not rows or any(rewrote_all for _, rewrote_all in rows):
        return "true"
    days = ", ".join(f"date '{day.isoformat()}'" for day, _ in rows)
    return f"{day_column} in ({days})"


def validate_mart(
    con: duckdb.DuckDBPyConnection, mart: MartSuite, full_history: bool = False
) -> tuple[SuiteOutcome | None, list[str]]:
    """Validate ``mart``'s suite on the warehouse ``con``: (outcome, []) or (None, missing tables).

    A day-partitioned mart (``mart.day_column``) is read for the days its
    latest build rewrote, every row with ``full_history``.
    """
    missing = [name for name in (f"{mart.schema}.{mart.table}", *mart.reads) if not table_exists(con, name)]
    if missing:
        return None, missing
    query = mart.query
    if mart.day_column:
        query = query.format(
            rewritten=rewritten_by_latest_build(con, f"{mart.schema}.{mart.table}", mart.day_column, full_history)
        )
    frame = con.execute(query).df()
    outcome = validate(mart.build_suite(), frame, f"{mart.schema}/{mart.table}", mart.index_columns)
    return outcome, []


__all__ = [
    "CRITICAL",
    "WARNING",
    "ExpectationOutcome",
    "SuiteOutcome",
    "store_outcome",
    "rewritten_by_latest_build",
    "validate",
    "validate_mart",
]
