"""Patterns: a Sankey of conversation paths, where successful and failed conversations diverge, objections and fallback topics.

The Sankey and the top paths follow the sidebar's period and filters: they
count the scope's rows of ``marts.fct_conversation_paths`` (each path split
into its moves), as ``marts.path_transitions`` and ``marts.top_paths`` count
every row (tests prove the two agree over the whole history). Divergence rows
come from ``marts.path_divergence`` through the same functions
``convo-warehouse patterns`` prints, and objections from
``marts.objection_outcomes``: both are whole-history statistics, labelled so.
Fallback topics sum the ``fallback_topic`` rows of
``marts.metrics_by_dimension`` over the period's days.
"""

from __future__ import annotations

import pandas as pd

from convo_warehouse.commands.patterns import divergence_points, first_divergence
from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.data import has_table, records
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib.scope import Scope, scope_cte

SANKEY_DEPTH = 6
SANKEY_MIN_CONVERSATIONS = 5
DIVERGENCE_SHOWN = 10
PATHS_SHOWN = 5


PATH_SEPARATOR = " > "  # how fct_conversation_paths joins a path's steps, its outcome last


def sankey_links(con, scope: Scope = Scope(), max_depth: int = SANKEY_DEPTH,
                 min_conversations: int = SANKEY_MIN_CONVERSATIONS) -> list[dict]:
    """Moves from depth 1 to ``max_depth`` made by at least ``min_conversations`` of the scope's conversations.

    A node is (depth, step), so the diagram reads left to right; outcome nodes
    end a path at any depth. A path's move at depth d goes from its d-th step
    to the next one (the last step to the outcome), as in path_transitions.
    """
    scope_sql, params = scope_cte(scope)
    return records(
        con,
        f"""
        with scope as ({scope_sql}),
        paths as (
            select fct_conversation_paths.is_successful,
                   string_split(fct_conversation_paths.path, '{PATH_SEPARATOR}') as steps
            from marts.fct_conversation_paths
            inner join scope on fct_conversation_paths.conversation_id = scope.conversation_id
        ),
        moves as (
            select depths.depth, paths.steps[depths.depth] as from_step, paths.steps[depths.depth + 1] as to_step,
                   paths.is_successful
            from paths, lateral (select unnest(range(1, len(paths.steps))) as depth) as depths
        )
        select moves.depth, moves.from_step, moves.to_step, count(*) as conversations,
               avg(case when moves.is_successful then 1.0 else 0.0 end) as success_share
        from moves
        where moves.depth <= ?
        group by moves.depth, moves.from_step, moves.to_step
        having count(*) >= ?
        order by moves.depth, conversations desc, moves.from_step, moves.to_step
        """,
        [*params, max_depth, min_conversations],
    )


def top_paths(con, scope: Scope = Scope(), limit: int = PATHS_SHOWN) -> dict[str, list[tuple]]:
    """Per success group, the ``limit`` most common paths of the scope's finished conversations:
    (rank, conversations, share of the group, path), as marts.top_paths ranks every conversation."""
    scope_sql, params = scope_cte(scope)
    rows = con.execute(
        f"""
        with scope as ({scope_sql}),
        counted as (
            select fct_conversation_paths.is_successful, fct_conversation_paths.path, count(*) as conversations
            from marts.fct_conversation_paths
            inner join scope on fct_conversation_paths.conversation_id = scope.conversation_id
            where fct_conversation_paths.outcome != 'in_progress'
            group by 1, 2
        ),
        ranked as (
            select counted.*,
                   counted.conversations / sum(counted.conversations) over (partition by counted.is_successful)
                       as share,
                   row_number() over (partition by counted.is_successful
                                      order by counted.conversations desc, counted.path) as path_rank
            from counted
        )
        select case when ranked.is_successful then 'successful' else 'failed' end, ranked.path_rank,
               ranked.conversations, ranked.share, ranked.path
        from ranked
        where ranked.path_rank <= ?
        order by 1 desc, 2
        """,
        [*params, limit],
    ).fetchall()
    groups: dict[str, list[tuple]] = {"successful": [], "failed": []}
    for group, rank, conversations, share, path in rows:
        groups[group].append((rank, conversations, share, path))
    return groups


def objections(con) -> list[dict]:
    """Per objection: how often it is raised and conversion after it vs without it."""
    return records(
        con,
        """
        select objection_outcomes.objection, objection_outcomes.raised_conversations,
               objection_outcomes.raised_share, objection_outcomes.conversion_rate_after_raised,
               objection_outcomes.conversion_rate_after_raised_ci_low,
               objection_outcomes.conversion_rate_after_raised_ci_high,
               objection_outcomes.conversion_rate_not_raised, objection_outcomes.conversion_rate_difference
        from marts.objection_outcomes
        order by objection_outcomes.raised_conversations desc, objection_outcomes.objection
        """,
    )


def fallback_topics(con, scope: Scope = Scope()) -> list[dict]:
    """Fallback topics over the scope's days (metrics_by_dimension is per day, not per channel or
    agent): fallbacks, their share, conversations affected and their completion rate."""
    return records(
        con,
        """
        with topics as (
            select metrics_by_dimension.dimension_value as topic,
                   sum(metrics_by_dimension.events) as fallbacks,
                   sum(metrics_by_dimension.conversations) as conversations,
                   sum(metrics_by_dimension.completed_conversations) as completed,
                   sum(metrics_by_dimension.started_conversations) as started
            from marts.metrics_by_dimension
            where metrics_by_dimension.dimension = 'fallback_topic'
                and (cast(? as date) is null or metrics_by_dimension.metric_date >= cast(? as date))
                and (cast(? as date) is null or metrics_by_dimension.metric_date <= cast(? as date))
            group by metrics_by_dimension.dimension_value
        )
        select topics.topic, topics.fallbacks,
               topics.fallbacks / sum(topics.fallbacks) over () as share_of_fallbacks,
               topics.conversations,
               topics.completed / nullif(topics.started, 0) as completion_rate
        from topics
        order by topics.fallbacks desc, topics.topic
        """,
        [scope.start, scope.start, scope.end, scope.end],
    )


def _sankey(links: list[dict]):
    import plotly.graph_objects as go

    nodes: dict[tuple[int, str], int] = {}

    def node(depth: int, step: str) -> int:
        return nodes.setdefault((depth, step), len(nodes))

    sources = [node(link["depth"], link["from_step"]) for link in links]
    targets = [node(link["depth"] + 1, link["to_step"]) for link in links]
    labels = [step for (_, step) in nodes]
    colours = [
        f"rgba({round(214 * (1 - link['success_share']) + 44 * link['success_share'])}, "
        f"{round(39 * (1 - link['success_share']) + 160 * link['success_share'])}, "
        f"{round(40 * (1 - link['success_share']) + 44 * link['success_share'])}, 0.45)"
        for link in links
    ]
    figure = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={"label": labels, "pad": 12, "thickness": 12},
            link={
                "source": sources,
                "target": targets,
                "value": [link["conversations"] for link in links],
                "color": colours,
                "customdata": [fmt.percent(link["success_share"]) for link in links],
                "hovertemplate": "%{source.label} → %{target.label}<br>%{value} conversations, "
                "%{customdata} successful<extra></extra>",
            },
        )
    )
    figure.update_layout(height=560, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return figure


def _show(columns: dict, raw: list[dict] | pd.DataFrame, title: str, key: str) -> None:
    tables.show(pd.DataFrame(columns), pd.DataFrame(raw), title=title, key=key)


def render(context) -> None:
    import streamlit as st

    con, scope = context.con, context.scope
    st.title("Patterns")
    if not has_table(con, "marts.path_transitions"):
        st.info("This snapshot has no patterns marts yet: run `convo-warehouse run` to build them.")
        return
    st.caption(
        f"**{context.choice.period_words}**; {fmt.markdown_safe(scope.describe(period=False))} (paths and the Sankey; other sections say what "
        "they cover). Success = converted, or completed without a handoff. Links are coloured from red (no "
        "conversation through them succeeded) to green (all did)."
    )
    depth = st.slider("Steps shown", min_value=2, max_value=12, value=SANKEY_DEPTH)
    links = sankey_links(con, scope, depth)
    if links:
        st.plotly_chart(_sankey(links), key="paths-sankey")
    else:
        st.info("Too few conversations for a path diagram.")

    paths = top_paths(con, scope, PATHS_SHOWN)
    left, right = st.columns(2)
    for column, group in ((left, "successful"), (right, "failed")):
        with column:
            st.markdown(f"**Most common paths of {group} conversations**")
            _show(
                {"#": [row[0] for row in paths[group]],
                 "conversations": [fmt.count(row[1]) for row in paths[group]],
                 "share": [fmt.percent(row[2]) for row in paths[group]],
                 "path": [row[3] for row in paths[group]]},
                [{"rank": rank, "conversations": number, "share": share, "path": path}
                 for rank, number, share, path in paths[group]],
                title=f"most common paths {group}", key=f"paths-{group}",
            )

    st.subheader("Where successful and failed conversations diverge")
    st.caption("Whole history (chi-square / Fisher per step over every finished conversation; not filtered).")
    rows = divergence_points(con, "overall", "all", "all", "anywhere", DIVERGENCE_SHOWN)
    if rows:
        _show(
            {
                "step": [row[2] for row in rows],
                "more common in": [row[3] for row in rows],
                "successful": [fmt.percent(row[4]) for row in rows],
                "failed": [fmt.percent(row[5]) for row in rows],
                "chi-square": [fmt.number(row[6], 1) for row in rows],
                "p (adjusted)": [fmt.format_p(row[7]) for row in rows],
            },
            [{"rank": row[0], "depth": row[1], "step": row[2], "more_common_in": row[3], "share_successful": row[4],
              "share_failed": row[5], "statistic": row[6], "p_value_adjusted": row[7]} for row in rows],
            title="divergence", key="divergence",
        )
        first = first_divergence(con, "overall", "all", "all")
        if first is not None:
            # plain text: a step names tools and topics from the events
            st.text(
                f"First point of divergence: step {first[0]}, {first[1]} ({fmt.percent(first[3])} of successful "
                f"vs {fmt.percent(first[4])} of failed conversations)"
            )
    else:
        st.info("Too few finished conversations to compare.")

    st.subheader("Objections (sales conversations)")
    st.caption("Whole history (not filtered).")
    objection_rows = objections(con)
    _show(
        {
            "objection": [row["objection"] for row in objection_rows],
            "raised in": [fmt.count(row["raised_conversations"]) for row in objection_rows],
            "share raised": [fmt.percent(row["raised_share"]) for row in objection_rows],
            "conversion after raised": [
                f"{fmt.percent(row['conversion_rate_after_raised'])} "
                f"({fmt.percent(row['conversion_rate_after_raised_ci_low'])}–"
                f"{fmt.percent(row['conversion_rate_after_raised_ci_high'])})"
                for row in objection_rows
            ],
            "conversion without it": [fmt.percent(row["conversion_rate_not_raised"]) for row in objection_rows],
            "difference": [fmt.points(row["conversion_rate_difference"]) for row in objection_rows],
        },
        objection_rows, title="objections", key="objections",
    )

    st.subheader("Fallback topics")
    st.caption(f"{context.choice.period_words} (the period only: this breakdown is kept per day, not per channel "
               "or agent).")
    topic_rows = fallback_topics(con, scope)
    _show(
        {
            "topic": [row["topic"] for row in topic_rows],
            "fallbacks": [fmt.count(row["fallbacks"]) for row in topic_rows],
            "share of fallbacks": [fmt.percent(row["share_of_fallbacks"]) for row in topic_rows],
            "conversations affected": [fmt.count(row["conversations"]) for row in topic_rows],
            "their completion rate": [fmt.percent(row["completion_rate"]) for row in topic_rows],
        },
        topic_rows, title="fallback topics", key="fallback-topics",
    )


PAGE = Page(title="Patterns", url_path="patterns", icon=":material/alt_route:", order=25, render=render)
