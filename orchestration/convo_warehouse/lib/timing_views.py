"""When conversations go well: the timing rates by weekday and UTC hour, for any period and filters.

Summed from the day partials of ``marts.timing_daily`` (one row per day, hour
of the first event, channel, agent and environment), so any period's heatmap
is a small sum; ``marts.timing_patterns`` is the same sum over the whole
history. Each rate is a summed numerator over a summed denominator, never an
average of daily rates:

- ``interaction_rate``: initialized and engaged / initialized (metrics_daily's)
- ``engagement_rate``: started and engaged / started
- ``completion_rate``: started and completed / started (metrics_daily's)

A conversation counts in the weekday of its day (UTC date of its first
event) and the UTC hour of its first event. Used by the dashboard's Overview
page and the read API (``/api/timing``). No Streamlit and no Dagster here.
"""

from __future__ import annotations

import dataclasses

from convo_warehouse.lib.scope import Scope, day_mart_where

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# rate -> (numerator column, denominator column) of timing_daily
RATES = {
    "interaction_rate": ("interacted_conversations", "initialized_conversations"),
    "engagement_rate": ("engaged_conversations", "started_conversations"),
    "completion_rate": ("completed_conversations", "started_conversations"),
}
COUNTS = ("conversations", "initialized_conversations", "interacted_conversations", "started_conversations",
          "engaged_conversations", "completed_conversations")


@dataclasses.dataclass(frozen=True)
class TimingCell:
    """One weekday and hour: its counts and rates (None where the denominator is 0)."""

    weekday: int  # ISO: 1 = Monday .. 7 = Sunday
    hour_of_day: int  # UTC hour of the first event, 0..23
    conversations: int
    initialized_conversations: int
    interacted_conversations: int
    started_conversations: int
    engaged_conversations: int
    completed_conversations: int

    @property
    def weekday_name(self) -> str:
        return WEEKDAYS[self.weekday - 1]

    def rate(self, name: str) -> float | None:
        numerator, denominator = RATES[name]
        below = getattr(self, denominator)
        return getattr(self, numerator) / below if below else None

    def as_dict(self) -> dict:
        return {"weekday": self.weekday, "weekday_name": self.weekday_name, **dataclasses.asdict(self),
                **{name: self.rate(name) for name in RATES}}


def timing_cells(con, scope: Scope = Scope()) -> list[TimingCell]:
    """Every weekday and hour with a conversation in the scope (Monday 0h first). Channel, agent,
    environment and development traffic apply; an experiment variant cannot (not a column of
    timing_daily: check ``scope.experiment``)."""
    where, params = day_mart_where(scope, "timing_daily")
    sums = ", ".join(f"cast(sum(timing_daily.{column}) as bigint)" for column in COUNTS)
    rows = con.execute(
        f"""
        select timing_daily.weekday, timing_daily.hour_of_day, {sums}
        from marts.timing_daily
        where {where}
        group by timing_daily.weekday, timing_daily.hour_of_day
        order by timing_daily.weekday, timing_daily.hour_of_day
        """,
        params,
    ).fetchall()
    return [TimingCell(*row) for row in rows]


def grid(cells: list[TimingCell], rate: str) -> list[list[float | None]]:
    """The rate as 7 rows (Monday first) of 24 hours, None where no conversation or no denominator."""
    if rate not in RATES:
        raise ValueError(f"unknown rate {rate!r}: use one of {', '.join(RATES)}")
    values: list[list[float | None]] = [[None] * 24 for _ in WEEKDAYS]
    for cell in cells:
        values[cell.weekday - 1][cell.hour_of_day] = cell.rate(rate)
    return values
