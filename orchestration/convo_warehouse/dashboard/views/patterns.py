"""Patterns: a Sankey of conversation paths, where successful and failed conversations diverge, objections and fallback topics.

Top paths and divergence rows come from ``marts.top_paths`` and
``marts.path_divergence`` through the same functions ``convo-warehouse
patterns`` prints (``commands/patterns.py``); the Sankey reads
``marts.path_transitions``; objections ``marts.objection_outcomes``; fallback
topics the ``fallback_topic`` rows of ``marts.metrics_by_dimension`` summed
over the whole history.
"""

from __future__ import annotations

from convo_warehouse.commands.patterns import divergence_points, first_divergence, top_paths
from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard.data import has_table, records
from convo_warehouse.dashboard.views import Page

SANKEY_DEPTH = 6
SANKEY_MIN_CONVERSATIONS = 5
DIVERGENCE_SHOWN = 10
PATHS_SHOWN = 5


def sankey_links(con, max_depth: int = SANKEY_DEPTH, min_conversations: int = SANKEY_MIN_CONVERSATIONS) -> list[dict]:
    """Moves from depth 1 to ``max_depth`` made by at least ``min_conversations`` conversations.

    A node is (depth, step), so the diagram reads left to right; outcome nodes
    end a path at any depth.
    """
    return records(
        con,
        """
        select path_transitions.depth, path_transitions.from_step, path_transitions.to_step,
               path_transitions.conversations, path_transitions.success_share
        from marts.path_transitions
        where path_transitions.depth <= ? and path_transitions.conversations >= ?
        order by path_transitions.depth, path_transitions.conversations desc, path_transitions.from_step,
                 path_transitions.to_step
        """,
        [max_depth, min_conversations],
    )


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


def fallback_topics(con) -> list[dict]:
    """Fallback topics over the whole history: fallbacks, their share, conversations affected and their completion rate."""
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
            group by metrics_by_dimension.dimension_value
        )
        select topics.topic, topics.fallbacks,
               topics.fallbacks / sum(topics.fallbacks) over () as share_of_fallbacks,
               topics.conversations,
               topics.completed / nullif(topics.started, 0) as completion_rate
        from topics
        order by topics.fallbacks desc, topics.topic
        """,
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


def _frame(columns: dict):
    """A table whose first column is its index (so it is not numbered 0, 1, 2...)."""
    import pandas as pd

    first = next(iter(columns))
    return pd.DataFrame(columns).set_index(first)


def _table(columns: dict) -> None:
    import streamlit as st

    st.table(_frame(columns))


def render(con, snapshot) -> None:
    import streamlit as st

    st.title("Patterns")
    if not has_table(con, "marts.path_transitions"):
        st.info("This snapshot has no patterns marts yet: run `convo-warehouse run` to build them.")
        return
    st.caption(
        "Whole history. Success = converted, or completed without a handoff. Links are coloured from red "
        "(no conversation through them succeeded) to green (all did)."
    )
    depth = st.slider("Steps shown", min_value=2, max_value=12, value=SANKEY_DEPTH)
    links = sankey_links(con, depth)
    if links:
        st.plotly_chart(_sankey(links), key="paths-sankey")
    else:
        st.info("Too few conversations for a path diagram.")

    st.subheader("Where successful and failed conversations diverge")
    rows = divergence_points(con, "overall", "all", "all", "anywhere", DIVERGENCE_SHOWN)
    if rows:
        _table(
            {
                "step": [row[2] for row in rows],
                "more common in": [row[3] for row in rows],
                "successful": [fmt.percent(row[4]) for row in rows],
                "failed": [fmt.percent(row[5]) for row in rows],
                "chi-square": [fmt.number(row[6], 1) for row in rows],
                "p (adjusted)": [fmt.format_p(row[7]) for row in rows],
            }
        )
        first = first_divergence(con, "overall", "all", "all")
        if first is not None:
            st.markdown(
                f"**First point of divergence:** step {first[0]}, `{first[1]}` "
                f"({fmt.percent(first[3])} of successful vs {fmt.percent(first[4])} of failed conversations)"
            )
    else:
        st.info("Too few finished conversations to compare.")

    paths = top_paths(con, PATHS_SHOWN)
    left, right = st.columns(2)
    for column, group in ((left, "successful"), (right, "failed")):
        column.markdown(f"**Most common paths of {group} conversations**")
        column.table(
            _frame(
                {"#": [row[0] for row in paths[group]],
                 "conversations": [fmt.count(row[1]) for row in paths[group]],
                 "share": [fmt.percent(row[2]) for row in paths[group]],
                 "path": [row[3] for row in paths[group]]}
            )
        )

    st.subheader("Objections (sales conversations)")
    objection_rows = objections(con)
    _table(
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
        }
    )

    st.subheader("Fallback topics")
    topic_rows = fallback_topics(con)
    _table(
        {
            "topic": [row["topic"] for row in topic_rows],
            "fallbacks": [fmt.count(row["fallbacks"]) for row in topic_rows],
            "share of fallbacks": [fmt.percent(row["share_of_fallbacks"]) for row in topic_rows],
            "conversations affected": [fmt.count(row["conversations"]) for row in topic_rows],
            "their completion rate": [fmt.percent(row["completion_rate"]) for row in topic_rows],
        }
    )


PAGE = Page(title="Patterns", url_path="patterns", icon=":material/alt_route:", order=25, render=render)
