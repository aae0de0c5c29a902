"""Which conversations a view counts: a period of conversation days and filters.

The dashboard, ``convo-warehouse funnel`` and the read API all describe what
they count with one ``Scope`` and turn it into SQL here, over the marts of a
published snapshot (or a warehouse): ``fct_conversations`` for the period and
attributes, ``ab_test_exposures`` for an experiment variant. A conversation
belongs to the UTC day of its first event (``conversation_date``), as in every
mart. No Streamlit and no Dagster here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

# The rule of macros/metrics/is_development_traffic.sql (environment =
# 'development'; a conversation without one is not), over fct_conversations.
# tests/serving/test_dashboard.py proves it selects what metrics_by_conversation's
# is_development (built with the macro) selects.
IS_DEVELOPMENT_SQL = "coalesce(fct_conversations.environment = 'development', false)"
UNKNOWN = "unknown"  # a null attribute, as the metrics' segment values say
DEFAULT_PERIOD_DAYS = 28


@dataclasses.dataclass(frozen=True)
class Scope:
    """The conversations counted: days ``start``..``end`` (inclusive, either open), attribute
    filters (empty: any value; a null attribute is ``unknown``), development traffic or not,
    and one experiment variant (contaminated conversations never belong to a variant)."""

    start: dt.date | None = None
    end: dt.date | None = None
    channels: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    include_development: bool = True
    experiment: tuple[str, str] | None = None  # (test_name, variant)

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"the period starts ({self.start}) after it ends ({self.end})")

    @property
    def is_whole_history(self) -> bool:
        """No period and no filter: every conversation of the marts."""
        return self == Scope()

    def describe(self, period: bool = True) -> str:
        """For people: "2026-10-26..2026-11-22, channel web, without development traffic" (without
        the period: the filters only, "no filter" when there is none)."""
        parts = []
        if not period:
            pass
        elif self.start or self.end:
            parts.append(f"{self.start or 'first day'}..{self.end or 'last day'}")
        else:
            parts.append("whole history")
        for label, values in (("channel", self.channels), ("agent", self.agents), ("environment", self.environments)):
            if values:
                parts.append(f"{label} {', '.join(values)}")
        if not self.include_development:
            parts.append("without development traffic")
        if self.experiment:
            parts.append(f"{self.experiment[0]} = {self.experiment[1]}")
        return ", ".join(parts) or "no filter"


def scope_cte(scope: Scope) -> tuple[str, list]:
    """A CTE body selecting ``conversation_id`` and ``conversation_date`` of the scope's
    conversations, with its parameters (values are always bound, never pasted into SQL)."""
    conditions, params = [], []
    if scope.start is not None:
        conditions.append("fct_conversations.conversation_date >= ?")
        params.append(scope.start)
    if scope.end is not None:
        conditions.append("fct_conversations.conversation_date <= ?")
        params.append(scope.end)
    for column, values in (("channel", scope.channels), ("agent_id", scope.agents),
                           ("environment", scope.environments)):
        if values:
            placeholders = ", ".join("?" for _ in values)
            conditions.append(f"coalesce(fct_conversations.{column}, '{UNKNOWN}') in ({placeholders})")
            params.extend(values)
    if not scope.include_development:
        conditions.append(f"not {IS_DEVELOPMENT_SQL}")
    if scope.experiment is not None:
        conditions.append(
            "fct_conversations.conversation_id in (select ab_test_exposures.conversation_id "
            "from marts.ab_test_exposures where ab_test_exposures.test_name = ? "
            "and ab_test_exposures.variant = ? and ab_test_exposures.variant_count = 1)"
        )
        params.extend(scope.experiment)
    where = f"where {' and '.join(conditions)}" if conditions else ""
    sql = (
        "select fct_conversations.conversation_id, fct_conversations.conversation_date "
        f"from marts.fct_conversations {where}"
    )
    return sql, params


def day_mart_where(scope: Scope, relation: str) -> tuple[str, list]:
    """A where clause (``true`` when unfiltered) selecting the rows of a day mart that belong to the
    scope, with its parameters: the mart has ``conversation_date`` and the conversations'
    ``channel``, ``agent_id`` and ``environment`` with ``unknown`` for a missing value
    (``abandon_turn_daily``, ``timing_daily``). The experiment variant is no column of such a mart:
    callers refuse or mention it (``scope.experiment``)."""
    conditions, params = ["true"], []
    if scope.start is not None:
        conditions.append(f"{relation}.conversation_date >= ?")
        params.append(scope.start)
    if scope.end is not None:
        conditions.append(f"{relation}.conversation_date <= ?")
        params.append(scope.end)
    for column, values in (("channel", scope.channels), ("agent_id", scope.agents),
                           ("environment", scope.environments)):
        if values:
            conditions.append(f"{relation}.{column} in ({', '.join('?' for _ in values)})")
            params.extend(values)
    if not scope.include_development:
        # IS_DEVELOPMENT_SQL's rule: a missing environment (stored as unknown) is not development
        conditions.append(f"{relation}.environment != 'development'")
    return " and ".join(conditions), params


def latest_complete_day(con) -> dt.date | None:
    """The newest conversation day before the day of the newest event (that day is still
    running); the newest day itself when there is no earlier one; None without conversations."""
    row = con.execute(
        """
        with newest as (
            select cast(max(fct_conversations.last_event_at) as date) as newest_day
            from marts.fct_conversations
        )
        select
            max(case when fct_conversations.conversation_date < newest.newest_day
                then fct_conversations.conversation_date end),
            max(fct_conversations.conversation_date)
        from marts.fct_conversations, newest
        """
    ).fetchone()
    return row[0] or row[1]


def default_period(con, days: int = DEFAULT_PERIOD_DAYS) -> tuple[dt.date, dt.date] | None:
    """The last ``days`` complete days (ending on latest_complete_day), or None without data."""
    end = latest_complete_day(con)
    if end is None:
        return None
    return end - dt.timedelta(days=days - 1), end


@dataclasses.dataclass(frozen=True)
class FilterOptions:
    """The values each filter can take in these marts, most conversations first."""

    first_day: dt.date | None
    last_day: dt.date | None
    channels: list[str]
    agents: list[str]
    environments: list[str]
    experiments: dict[str, list[str]]  # test_name -> variants


def filter_options(con) -> FilterOptions:
    def values(column: str) -> list[str]:
        return [
            row[0]
            for row in con.execute(
                f"select coalesce(fct_conversations.{column}, '{UNKNOWN}') as value, count(*) as conversations "
                "from marts.fct_conversations group by 1 order by 2 desc, 1"
            ).fetchall()
        ]

    first_day, last_day = con.execute(
        "select min(conversation_date), max(conversation_date) from marts.fct_conversations"
    ).fetchone()
    experiments: dict[str, list[str]] = {}
    for test_name, variant in con.execute(
        "select test_name, variant from marts.ab_test_exposures where variant_count = 1 "
        "group by 1, 2 order by 1, 2"
    ).fetchall():
        experiments.setdefault(test_name, []).append(variant)
    return FilterOptions(first_day, last_day, values("channel"), values("agent_id"), values("environment"),
                         experiments)
