"""A funnel as people read it, for any period and filters, in either reading.

Every view of a funnel (the dashboard's Funnels page, ``convo-warehouse
funnel``, the read API) is built here, over the snapshot's marts:
``fct_conversation_stages`` (each stage a conversation reached, with the
in-order flag), ``fct_conversations`` (the scope: ``lib/scope.py``) and
``funnel_summary`` (the funnel's stages and declared reading). The two
readings (docs/funnels.md):

- ``in_order`` (nested): a stage counts the conversations that reached it and
  every earlier stage in order; "from previous" is its count over the previous
  stage's, drop-off the difference.
- ``any_order``: a stage counts every conversation that reached it; "from
  previous" is the share of the conversations that reached the previous stage
  that also reached this one, drop-off those that did not.

In both, the population is the conversations that entered the funnel (reached
any of its stages) and the first stage's "from previous" is its share of it,
so no rate exceeds 1 and no drop-off is negative.

``abandon_turns`` gives the turns at which the scope's conversations were
abandoned most, summed from the day partials of ``abandon_turn_daily``.
"""

from __future__ import annotations

import dataclasses

from convo_warehouse.lib.scope import Scope, day_mart_where, scope_cte

READINGS = ("any_order", "in_order")


class UnknownFunnelError(LookupError):
    """The funnel is not in the marts' funnel_summary (not in the funnel seed)."""


@dataclasses.dataclass(frozen=True)
class StageView:
    stage: str
    stage_order: int
    count: int  # conversations counted at this stage in the reading shown
    share_of_entered: float | None  # count / entered
    from_previous: float | None  # see the module docstring; the first stage: count / entered
    drop_off: int  # previous stage's base - those that went on; the first stage: entered - count
    drop_off_rate: float | None  # drop_off / the previous stage's base (entered for the first)
    is_major_drop_off: bool  # drop_off_rate above the marts' funnel_major_drop_off_threshold (not the first stage)
    reached: int  # any order
    reached_in_order: int
    median_seconds_from_previous_stage: float | None  # both reached with known times, this one not earlier
    # from the funnel's first stage, both reached with known times, this one not earlier (stages between may
    # be skipped); None for the first stage. The support funnel's resolved: the median time to resolution
    median_seconds_from_first_stage: float | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FunnelView:
    funnel_name: str
    counting: str  # the reading the seed declares
    reading: str  # the reading these stages are in
    entered: int
    stages: list[StageView]
    major_drop_off_threshold: float | None

    def worst_step(self) -> StageView | None:
        """The stage after the first with the largest drop-off rate (ties: the earlier), if any loses anyone."""
        candidates = [stage for stage in self.stages[1:] if stage.drop_off_rate and stage.drop_off_rate > 0]
        return max(candidates, key=lambda stage: (stage.drop_off_rate, -stage.stage_order), default=None)

    def previous_stage(self, stage: StageView) -> StageView | None:
        index = self.stages.index(stage)
        return self.stages[index - 1] if index else None

    def as_dict(self) -> dict:
        return {
            "funnel_name": self.funnel_name,
            "counting": self.counting,
            "reading": self.reading,
            "entered": self.entered,
            "major_drop_off_threshold": self.major_drop_off_threshold,
            "stages": [stage.as_dict() for stage in self.stages],
        }


def funnel_names(con) -> list[str]:
    """Funnels of the marts, by name."""
    return [row[0] for row in con.execute(
        "select distinct funnel_summary.funnel_name from marts.funnel_summary order by 1").fetchall()]


def declared_reading(con, funnel: str) -> str | None:
    """The reading ``funnel``'s seed declares (funnel_summary.counting); None for an unknown funnel."""
    row = con.execute(
        "select max(funnel_summary.counting) from marts.funnel_summary where funnel_summary.funnel_name = ?", [funnel]
    ).fetchone()
    return row[0]


def major_drop_off_threshold(con) -> float | None:
    """The dbt var funnel_major_drop_off_threshold the marts were built with."""
    row = con.execute("select max(funnel_summary_since.major_drop_off_threshold) from marts.funnel_summary_since")
    return row.fetchone()[0]


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def funnel_view(con, funnel: str, scope: Scope = Scope(), reading: str | None = None) -> FunnelView:
    """``funnel`` over the conversations of ``scope``, in ``reading`` (default: the declared one)."""
    if reading is not None and reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r}: use one of {', '.join(READINGS)}")
    stages = con.execute(
        """
        select funnel_summary.stage, funnel_summary.stage_order, funnel_summary.previous_stage,
               funnel_summary.counting
        from marts.funnel_summary
        where funnel_summary.funnel_name = ?
        order by funnel_summary.stage_order
        """,
        [funnel],
    ).fetchall()
    if not stages:
        raise UnknownFunnelError(
            f"no funnel named {funnel!r}; known funnels: {', '.join(funnel_names(con)) or 'none'}"
        )
    counting = stages[0][3]
    reading = reading or counting
    scope_sql, scope_params = scope_cte(scope)
    counts = con.execute(
        f"""
        with scope as ({scope_sql}),
        reached as (
            select fct_conversation_stages.conversation_id, fct_conversation_stages.stage,
                   fct_conversation_stages.reached_at, fct_conversation_stages.is_reached_in_order
            from marts.fct_conversation_stages
            inner join scope on fct_conversation_stages.conversation_id = scope.conversation_id
            where fct_conversation_stages.funnel_name = ?
        ),
        stage_list as (
            select funnel_summary.stage, funnel_summary.previous_stage, funnel_summary.stage_order,
                   funnel_summary.stage_order = min(funnel_summary.stage_order) over () as is_first_stage
            from marts.funnel_summary
            where funnel_summary.funnel_name = ?
        ),
        from_first as (
            -- as funnel_summary.median_seconds_from_first_stage (exact here, over the scope)
            select stage_list.stage,
                   quantile_cont(
                       case when first_stage.reached_at <= current_stage.reached_at
                           then (epoch_ms(current_stage.reached_at) - epoch_ms(first_stage.reached_at)) / 1000.0 end,
                       0.5
                   ) as median_seconds
            from stage_list
            inner join stage_list as first_list on first_list.is_first_stage
            inner join reached as current_stage on stage_list.stage = current_stage.stage
            inner join reached as first_stage
                on first_list.stage = first_stage.stage
                and current_stage.conversation_id = first_stage.conversation_id
            where not stage_list.is_first_stage
            group by stage_list.stage
        ),
        with_previous as (
            select stage_list.stage,
                   count(previous.conversation_id) as went_on,
                   -- as funnel_summary.median_seconds_from_previous_stage (exact here, over the scope)
                   quantile_cont(
                       case when previous.reached_at <= current_stage.reached_at
                           then (epoch_ms(current_stage.reached_at) - epoch_ms(previous.reached_at)) / 1000.0 end,
                       0.5
                   ) as median_seconds
            from stage_list
            inner join reached as current_stage on stage_list.stage = current_stage.stage
            inner join reached as previous
                on stage_list.previous_stage = previous.stage
                and current_stage.conversation_id = previous.conversation_id
            group by stage_list.stage
        ),
        per_stage as (
            select reached.stage, count(*) as reached,
                   count(*) filter (where reached.is_reached_in_order) as reached_in_order
            from reached
            group by reached.stage
        )
        select stage_list.stage,
               coalesce(per_stage.reached, 0), coalesce(per_stage.reached_in_order, 0),
               coalesce(with_previous.went_on, 0), with_previous.median_seconds,
               (select count(distinct reached.conversation_id) from reached),
               from_first.median_seconds
        from stage_list
        left join per_stage on stage_list.stage = per_stage.stage
        left join with_previous on stage_list.stage = with_previous.stage
        left join from_first on stage_list.stage = from_first.stage
        """,
        [*scope_params, funnel, funnel],
    ).fetchall()
    by_stage = {row[0]: row[1:] for row in counts}
    entered = counts[0][5] if counts else 0
    threshold = major_drop_off_threshold(con)
    views: list[StageView] = []
    previous = None  # (count, reached) of the previous stage
    for stage, stage_order, _previous_stage, _counting in stages:
        reached, reached_in_order, went_on, median_seconds, _entered, median_from_first = by_stage[stage]
        count = reached_in_order if reading == "in_order" else reached
        if previous is None:
            base, continued = entered, count
        elif reading == "in_order":
            base, continued = previous[0], count
        else:
            base, continued = previous[1], went_on
        drop_off = base - continued
        drop_off_rate = _ratio(drop_off, base)
        views.append(
            StageView(
                stage=stage,
                stage_order=stage_order,
                count=count,
                share_of_entered=_ratio(count, entered),
                from_previous=_ratio(continued, base),
                drop_off=drop_off,
                drop_off_rate=drop_off_rate,
                is_major_drop_off=bool(
                    previous is not None and threshold is not None and drop_off_rate is not None
                    and drop_off_rate > threshold
                ),
                reached=reached,
                reached_in_order=reached_in_order,
                median_seconds_from_previous_stage=median_seconds,
                median_seconds_from_first_stage=median_from_first,
            )
        )
        previous = (count, reached)
    return FunnelView(funnel, counting, reading, entered, views, threshold)


def stopped_before(con, funnel: str, next_stage: str, scope: Scope = Scope(), limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent last user messages of the scope's conversations that stopped right
    before ``next_stage`` (funnel_dropoffs, conversion window closed), unmasked."""
    scope_sql, scope_params = scope_cte(scope)
    return con.execute(
        f"""
        with scope as ({scope_sql})
        select coalesce(funnel_dropoffs.last_user_message, '(no user message)') as message,
               count(*) as conversations
        from marts.funnel_dropoffs
        inner join scope on funnel_dropoffs.conversation_id = scope.conversation_id
        where funnel_dropoffs.funnel_name = ? and funnel_dropoffs.next_stage = ? and not funnel_dropoffs.window_open
        group by 1
        order by conversations desc, message
        limit ?
        """,
        [*scope_params, funnel, next_stage, limit],
    ).fetchall()


DEFAULT_ABANDON_TURNS = 10


@dataclasses.dataclass(frozen=True)
class AbandonTurn:
    turn: int  # fct_conversations.abandoned_at_turn
    conversations: int  # the scope's abandoned conversations abandoned at this turn
    share: float  # of the scope's abandoned conversations with a turn

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AbandonTurns:
    """The turns at which the scope's conversations were abandoned, most abandoned first."""

    abandoned: int  # abandoned conversations with a turn in the scope (every turn, not only those listed)
    turns: list[AbandonTurn]  # at most the limit asked for; ties: the earlier turn first
    variant_ignored: bool  # the scope names an experiment variant, which abandon_turn_daily cannot filter by

    def as_dict(self) -> dict:
        return {"abandoned": self.abandoned, "turns": [turn.as_dict() for turn in self.turns],
                "variant_ignored": self.variant_ignored}


def abandon_turns(con, scope: Scope = Scope(), limit: int = DEFAULT_ABANDON_TURNS) -> AbandonTurns:
    """The top ``limit`` abandon turns of the scope's days and filters, summed from the day partials of
    ``marts.abandon_turn_daily`` (channel, agent, environment and development traffic apply; an
    experiment variant cannot and is reported as ignored)."""
    if limit < 1:
        raise ValueError(f"limit={limit}: ask for at least one turn")
    where, params = day_mart_where(scope, "abandon_turn_daily")
    rows = con.execute(
        f"""
        with turns as (
            select abandon_turn_daily.turn, sum(abandon_turn_daily.conversations) as conversations
            from marts.abandon_turn_daily
            where {where}
            group by abandon_turn_daily.turn
        )
        select turns.turn, turns.conversations, sum(turns.conversations) over () as abandoned
        from turns
        order by turns.conversations desc, turns.turn
        """,
        params,
    ).fetchall()
    abandoned = int(rows[0][2]) if rows else 0
    return AbandonTurns(
        abandoned=abandoned,
        turns=[AbandonTurn(int(turn), int(count), int(count) / abandoned) for turn, count, _ in rows[:limit]],
        variant_ignored=scope.experiment is not None,
    )
