"""The chat-analytics API as its document writes it: one period's dashboard and a funnel.

The systems this warehouse replaces answered ``GET /api/analytics/dashboard``
and ``GET /api/analytics/funnel`` with a fixed shape; the read API serves the
same shape (``api/app.py``) from the published snapshot, computed here:

- the nine ``metrics`` from ``marts.fct_conversations`` (and the mean rating
  from ``marts.feedback_rating_daily``),
- the ``funnel`` from ``lib/funnel_views.py`` (the same numbers as
  ``/api/funnels/<name>``, in the funnel's declared reading),
- ``top_fallback_topics`` from ``marts.metrics_by_dimension``,
- ``ab_tests`` from ``marts.ab_test_results`` (the seed's tests, variants and
  dates) and ``marts.ab_test_variant_daily``.

Which conversations a period holds: those whose day, the UTC date of their
first event (``conversation_date``, as in every mart), is in it. A
conversation that started the day before the period is not counted even if
it had events in the period, and one that started in it counts with all its
events, later ones too. That is the one reading every part of the answer can
take from the snapshot's marts (the day partials are by ``conversation_date``),
so the metrics, the funnel, the topics and the tests count the same
conversations. No filter other than the period: the document has none.

The document's meanings where they differ from the contract's metrics
(docs/serving.md): a "session" is any conversation of the period, started or
not; ``escalation_rate`` is the share of sessions with a handoff and
``resolution_rate`` is ``1 - escalation_rate`` (not the contract's
``resolution_rate``, completed without handoff over started);
``avg_session_duration_seconds`` runs from the first event to the last (not
from ``started_at``); ``avg_satisfaction_score`` is the mean of the numeric
1..5 ratings of ``feedback_received`` events (``positive`` / ``negative``
have no number on that scale and are left out), not the contract's 0..1
``satisfaction_score``. Rates are fractions 0..1, except the funnel's
``dropoffRate``, which the document gives in percent to one decimal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from convo_warehouse.lib import funnel_views
from convo_warehouse.lib.scope import Scope

DEFAULT_FUNNEL = "support"
TOP_FALLBACK_TOPICS = 10
METRICS = (
    "total_sessions",
    "avg_session_duration_seconds",
    "avg_messages_per_session",
    "escalation_rate",
    "resolution_rate",
    "fallback_rate",
    "conversion_rate",
    "avg_first_response_ms",
    "avg_satisfaction_score",
)


@dataclasses.dataclass(frozen=True)
class Period:
    """Conversation days ``start``..``end``, inclusive (UTC dates of the conversations' first events)."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"the period starts ({self.start}) after it ends ({self.end})")

    @property
    def scope(self) -> Scope:
        return Scope(start=self.start, end=self.end)

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def period_of(con, start: dt.date | None, end: dt.date | None,
              default: tuple[dt.date, dt.date] | None) -> Period | None:
    """The period asked for: without either bound ``default``; a missing bound is the marts' first
    (or last) conversation day. None when that is needed and the marts hold no conversation."""
    if start is None and end is None:
        return None if default is None else Period(*default)
    if start is None or end is None:
        first, last = con.execute(
            "select min(fct_conversations.conversation_date), max(fct_conversations.conversation_date) "
            "from marts.fct_conversations"
        ).fetchone()
        if first is None:
            return None
        start = start if start is not None else min(first, end)
        end = end if end is not None else max(last, start)
    return Period(start, end)


def _ratio(numerator, denominator) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def metrics(con, period: Period) -> dict:
    """The document's nine metrics over the conversations of ``period`` (see the module docstring)."""
    (sessions, duration_seconds, user_messages, handoffs, fallbacks, conversions, first_response_ms,
     first_responses) = con.execute(
        """
        select
            count(*),
            sum(date_diff('microsecond', fct_conversations.first_event_at, fct_conversations.last_event_at))
                / 1e6,
            sum(fct_conversations.user_turns),
            count(*) filter (where fct_conversations.had_handoff),
            sum(fct_conversations.fallback_count),
            count(*) filter (where fct_conversations.converted),
            sum(fct_conversations.first_response_ms),
            count(fct_conversations.first_response_ms)
        from marts.fct_conversations
        where fct_conversations.conversation_date between ? and ?
        """,
        [period.start, period.end],
    ).fetchone()
    rating_total, ratings = con.execute(
        """
        select sum(feedback_rating_daily.rating_value * feedback_rating_daily.feedback_events),
               sum(feedback_rating_daily.feedback_events)
        from marts.feedback_rating_daily
        where feedback_rating_daily.rating_value is not null
            and feedback_rating_daily.conversation_date between ? and ?
        """,
        [period.start, period.end],
    ).fetchone()
    escalation_rate = _ratio(handoffs, sessions)
    return {
        "total_sessions": int(sessions),
        "avg_session_duration_seconds": _ratio(duration_seconds, sessions),
        "avg_messages_per_session": _ratio(user_messages, sessions),
        "escalation_rate": escalation_rate,
        "resolution_rate": None if escalation_rate is None else 1.0 - escalation_rate,
        "fallback_rate": _ratio(fallbacks, user_messages),
        "conversion_rate": _ratio(conversions, sessions),
        "avg_first_response_ms": _ratio(first_response_ms, first_responses),
        "avg_satisfaction_score": _ratio(rating_total, ratings),
    }


def dropoff_percent(drop_off: int, base: int) -> float | None:
    """A drop-off as the document gives it: percent of ``base``, to one decimal; None without a base."""
    return round(drop_off / base * 100, 1) if base else None


def funnel_steps(con, period: Period, funnel: str = DEFAULT_FUNNEL) -> list[dict]:
    """The funnel's stages in its declared reading: ``name``, ``sessionCount`` (the stage's count, as
    ``/api/funnels/<name>``) and ``dropoffRate``, the percent of the previous stage's conversations
    that did not go on to this one (``drop_off`` over the previous stage's base; 0.0 for the first
    stage, which has no previous step; None when the previous stage has no conversation)."""
    view = funnel_views.funnel_view(con, funnel, period.scope)
    steps = []
    for index, stage in enumerate(view.stages):
        # funnel_views counts a stage's drop-off from the previous stage's count, in either reading
        rate = 0.0 if index == 0 else dropoff_percent(stage.drop_off, view.stages[index - 1].count)
        steps.append({"name": stage.stage, "sessionCount": stage.count, "dropoffRate": rate})
    return steps


def top_fallback_topics(con, period: Period, limit: int = TOP_FALLBACK_TOPICS) -> list[dict]:
    """The ``limit`` most frequent fallback topics of the period's conversations: ``topic``, ``count``
    (fallback_triggered events with it) and ``conversations`` (with at least one); most events first,
    then by topic. A fallback without a topic counts as ``unknown``."""
    rows = con.execute(
        """
        select metrics_by_dimension.dimension_value, sum(metrics_by_dimension.events),
               sum(metrics_by_dimension.conversations)
        from marts.metrics_by_dimension
        where metrics_by_dimension.dimension = 'fallback_topic'
            and metrics_by_dimension.metric_date between ? and ?
        group by 1
        order by 2 desc, 1
        limit ?
        """,
        [period.start, period.end, limit],
    ).fetchall()
    return [{"topic": topic, "count": int(count), "conversations": int(conversations)}
            for topic, count, conversations in rows]


def active_tests(con, period: Period) -> list[dict]:
    """The experiments seed's tests active in the period (its start_date..end_date meets the period; a
    missing date is open), each with its seed variants' sessions, conversions and conversion_rate over
    the period's conversations (counted as ab_test_results counts them), by test name."""
    rows = con.execute(
        """
        with period_counts as (
            select ab_test_variant_daily.test_name, ab_test_variant_daily.variant,
                   sum(ab_test_variant_daily.sessions) as sessions,
                   sum(ab_test_variant_daily.conversions) as conversions
            from marts.ab_test_variant_daily
            where ab_test_variant_daily.conversation_date between ? and ?
            group by 1, 2
        )
        select ab_test_results.test_name, ab_test_results.start_date, ab_test_results.end_date,
               ab_test_results.variant, ab_test_results.is_control,
               coalesce(period_counts.sessions, 0), coalesce(period_counts.conversions, 0)
        from marts.ab_test_results
        left join period_counts
            on ab_test_results.test_name = period_counts.test_name
            and ab_test_results.variant = period_counts.variant
        where (ab_test_results.start_date is null or ab_test_results.start_date <= ?)
            and (ab_test_results.end_date is null or ab_test_results.end_date >= ?)
        order by ab_test_results.test_name, ab_test_results.variant_order
        """,
        [period.start, period.end, period.end, period.start],
    ).fetchall()
    tests: dict[str, dict] = {}
    for test_name, start_date, end_date, variant, is_control, sessions, conversions in rows:
        test = tests.setdefault(test_name, {
            "test_name": test_name,
            "start_date": start_date.isoformat() if start_date else None,
            "end_date": end_date.isoformat() if end_date else None,
            "variants": [],
        })
        test["variants"].append({
            "variant": variant, "is_control": is_control, "sessions": int(sessions),
            "conversions": int(conversions), "conversion_rate": _ratio(conversions, sessions),
        })
    return list(tests.values())


def dashboard(con, period: Period) -> dict:
    """``GET /api/analytics/dashboard``'s answer for ``period``."""
    return {
        "metrics": metrics(con, period),
        "funnel": funnel_steps(con, period),
        "top_fallback_topics": top_fallback_topics(con, period),
        "ab_tests": active_tests(con, period),
        "period": period.as_dict(),
    }
