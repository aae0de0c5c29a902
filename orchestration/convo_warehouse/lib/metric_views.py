"""Metrics for any period and filters, from the snapshot's ``metrics_by_conversation``.

``metrics_daily`` has one segment at a time; a view crossing filters (web and
agent support-v3 and production only, in October) sums what each
conversation adds to every metric: ``metrics_by_conversation`` holds that,
generated in dbt from the same definitions as ``metrics_daily``
(``macros/metrics/metrics_definitions.sql``), so nothing is redefined here.
A ratio is sum(numerator) / sum(denominator) and has no value when the
denominator sums to 0; a count is its numerator; a percentile is recomputed
over the conversations' values. Used by the dashboard and the read API;
tests prove the sums equal ``metrics_daily`` for single segments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from convo_warehouse.lib.scope import Scope, scope_cte

ATTRIBUTE_SEGMENTS = ("channel", "agent_id", "device", "source", "language", "environment")
# the series' period column: per day, per hour, or one total over the whole scope
GRAINS = {"day": "metric_date", "hour": "metric_hour", "total": None}


class UnknownMetricError(LookupError):
    """A metric name that is not in dim_metrics."""


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric of ``dim_metrics``."""

    name: str
    kind: str  # count, ratio, percentile
    is_proportion: bool
    unit: str
    description: str
    percentile: float | None

    def aggregate_sql(self, relation: str) -> tuple[str, str]:
        """SQL aggregates of the numerator and denominator (None) over ``relation``'s rows;
        for a percentile, (None, the value)."""
        column = f"{relation}.{self.name}"
        if self.kind == "percentile":
            return "cast(null as double)", f"quantile_cont({column}__value, {float(self.percentile)})"
        numerator = f"sum({column}__numerator)"
        return numerator, (f"sum({column}__denominator)" if self.kind == "ratio" else "cast(null as double)")


@dataclasses.dataclass(frozen=True)
class MetricValue:
    metric_name: str
    numerator: float | None
    denominator: float | None
    value: float | None  # None: no conversation to count (a ratio's denominator is 0)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def glossary(con) -> dict[str, Metric]:
    """Every metric of dim_metrics, in display order."""
    rows = con.execute(
        """
        select dim_metrics.metric_name, dim_metrics.metric_kind, dim_metrics.is_proportion, dim_metrics.unit,
               dim_metrics.description, dim_metrics.percentile
        from marts.dim_metrics
        order by dim_metrics.display_order, dim_metrics.metric_name
        """
    ).fetchall()
    return {row[0]: Metric(*row) for row in rows}


def _metrics(con, names) -> list[Metric]:
    known = glossary(con)
    if names is None:
        return list(known.values())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UnknownMetricError(
            f"unknown metric {', '.join(map(repr, unknown))}; known metrics: {', '.join(known)}"
        )
    return [known[name] for name in names]


def _value(metric: Metric, numerator, denominator, percentile_value) -> MetricValue:
    if metric.kind == "percentile":
        return MetricValue(metric.name, None, None, percentile_value)
    if metric.kind == "count":
        return MetricValue(metric.name, numerator or 0.0, None, numerator or 0.0)
    value = numerator / denominator if denominator else None
    return MetricValue(metric.name, numerator, denominator, value)


def metric_values(con, scope: Scope = Scope(), names: list[str] | None = None) -> dict[str, MetricValue]:
    """Each metric (default: all) over the conversations of ``scope``, as one number."""
    metrics = _metrics(con, names)
    scope_sql, params = scope_cte(scope)
    aggregates = []
    for metric in metrics:
        numerator, second = metric.aggregate_sql("metrics_by_conversation")
        aggregates += [numerator, second]
    row = con.execute(
        f"""
        with scope as ({scope_sql})
        select {', '.join(aggregates)}
        from marts.metrics_by_conversation
        inner join scope on metrics_by_conversation.conversation_id = scope.conversation_id
        """,
        params,
    ).fetchone()
    values = {}
    for index, metric in enumerate(metrics):
        first, second = row[2 * index], row[2 * index + 1]
        values[metric.name] = _value(metric, first, second, second)
    return values


def daily_values(con, scope: Scope = Scope(), names: list[str] | None = None) -> dict[str, list[tuple]]:
    """Each metric (default: all) per day of the scope: name -> [(day, value)], oldest first,
    days without a value (a ratio's denominator 0) left out. One query for every metric."""
    metrics = _metrics(con, names)
    scope_sql, params = scope_cte(scope)
    aggregates = []
    for metric in metrics:
        aggregates += list(metric.aggregate_sql("metrics_by_conversation"))
    rows = con.execute(
        f"""
        with scope as ({scope_sql})
        select metrics_by_conversation.metric_date, {', '.join(aggregates)}
        from marts.metrics_by_conversation
        inner join scope on metrics_by_conversation.conversation_id = scope.conversation_id
        group by 1
        order by 1
        """,
        params,
    ).fetchall()
    values: dict[str, list[tuple]] = {metric.name: [] for metric in metrics}
    for row in rows:
        for index, metric in enumerate(metrics):
            first, second = row[1 + 2 * index], row[2 + 2 * index]
            value = _value(metric, first, second, second).value
            if value is not None:
                values[metric.name].append((row[0], value))
    return values


def _segment_expression(segment_type: str) -> tuple[str, str, list]:
    """(join, segment value expression, params) for a segment type of the long metric tables."""
    if segment_type == "all":
        return "", "'all'", []
    if segment_type in ATTRIBUTE_SEGMENTS:
        return "", f"metrics_by_conversation.{segment_type}", []
    if segment_type.startswith("experiment:"):
        join = (
            "inner join marts.ab_test_exposures on metrics_by_conversation.conversation_id "
            "= ab_test_exposures.conversation_id and ab_test_exposures.test_name = ? "
            "and ab_test_exposures.variant_count = 1"
        )
        return join, "coalesce(ab_test_exposures.variant, 'unknown')", [segment_type.removeprefix("experiment:")]
    raise ValueError(
        f"unknown segment type {segment_type!r}: use all, {', '.join(ATTRIBUTE_SEGMENTS)} or experiment:<test_name>"
    )


def metric_series(
    con, metric_name: str, scope: Scope = Scope(), segment_type: str = "all", grain: str = "day"
) -> pd.DataFrame:
    """``metric_name`` per day (or hour, or one ``total`` over the scope) and value of
    ``segment_type``, in the long tables' shape: period, segment_value, numerator, denominator,
    value (oldest first; period null for ``total``). Like metrics_daily, a ratio has no row where
    its denominator is 0."""
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}: use day, hour or total")
    [metric] = _metrics(con, [metric_name])
    join, segment_value, segment_params = _segment_expression(segment_type)
    numerator, second = metric.aggregate_sql("metrics_by_conversation")
    scope_sql, scope_params = scope_cte(scope)
    period = f"metrics_by_conversation.{GRAINS[grain]}" if GRAINS[grain] else "cast(null as date)"
    rows = con.execute(
        f"""
        with scope as ({scope_sql})
        select {period} as period, {segment_value} as segment_value,
               {numerator} as first, {second} as second
        from marts.metrics_by_conversation
        inner join scope on metrics_by_conversation.conversation_id = scope.conversation_id
        {join}
        group by 1, 2
        order by 1, 2
        """,
        [*scope_params, *segment_params],
    ).fetchall()
    records = []
    for period_value, value_of_segment, first, second in rows:
        value = _value(metric, first, second, second)
        if value.value is None:
            continue
        records.append((period_value, value_of_segment, value.numerator, value.denominator, value.value))
    return pd.DataFrame(records, columns=["period", "segment_value", "numerator", "denominator", "value"])


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before ``start``..``end``."""
    length = end - start + dt.timedelta(days=1)
    return start - length, start - dt.timedelta(days=1)


# marts.segment_comparison's columns the readers show (contract v1.3)
SEGMENT_COMPARISON_COLUMNS = (
    "metric_name", "segment_type", "segment_value", "period_start", "period_end", "numerator", "sample_size", "rate",
    "ci_low", "ci_high", "rest_rate", "difference_from_rest", "unadjusted_p_value", "p_value", "is_significant",
    "is_best", "better_direction", "is_small_sample",
)


def segment_comparison(con, metric_name: str | None = None, segment_type: str | None = None) -> pd.DataFrame:
    """Rows of ``marts.segment_comparison`` (each proportion metric's values against the rest of their
    segment type, over the period the mart was built for: the whole history by default), optionally of
    one metric and one segment type; highest rate first within each. Empty when the snapshot has no
    such table (published before contract v1.3)."""
    present = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name = 'segment_comparison'"
    ).fetchone()[0]
    if not present:
        return pd.DataFrame(columns=list(SEGMENT_COMPARISON_COLUMNS))
    rows = con.execute(
        f"""
        select {', '.join(f'segment_comparison.{column}' for column in SEGMENT_COMPARISON_COLUMNS)}
        from marts.segment_comparison
        where (cast(? as varchar) is null or segment_comparison.metric_name = ?)
            and (cast(? as varchar) is null or segment_comparison.segment_type = ?)
        order by segment_comparison.metric_name, segment_comparison.segment_type, segment_comparison.rate desc,
            segment_comparison.segment_value
        """,
        [metric_name, metric_name, segment_type, segment_type],
    ).df()
    for column in ("period_start", "period_end"):  # days, not midnights
        rows[column] = rows[column].dt.date
    return rows
