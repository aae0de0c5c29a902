"""Funnels: a funnel chart per funnel, drop-off, time between stages, where people stop, and their transcripts.

Stage numbers come from ``marts.funnel_summary`` through the same functions
``convo-warehouse funnel`` prints (``commands/funnel.py``); the most frequent
last user messages and the transcripts (``marts.fct_messages``) are masked
with ``lib/classify/pii.py`` before they are shown.
"""

from __future__ import annotations

from convo_warehouse.commands.funnel import StageRow, funnel_rows, top_last_messages, worst_step
from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard.data import has_table, records
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib.classify.pii import mask_pii

MESSAGES_SHOWN = 5
CONVERSATIONS_LISTED = 50


def funnel_names(con) -> list[str]:
    return [row[0] for row in con.execute("select distinct funnel_name from marts.funnel_summary order by 1").fetchall()]


def stages(con, funnel: str) -> list[StageRow]:
    """Every stage of ``funnel`` over the whole history, as funnel_summary has it."""
    return funnel_rows(con, funnel, None)


def last_messages_at(con, funnel: str, next_stage: str) -> list[tuple[str, int]]:
    """The most frequent last user messages of conversations that stopped before ``next_stage``, masked."""
    return [(mask_pii(message), count) for message, count in top_last_messages(con, funnel, next_stage, None, MESSAGES_SHOWN)]


def stopped_conversations(con, funnel: str, next_stage: str) -> list[dict]:
    """Conversations that stopped right before ``next_stage`` (newest first), last message masked."""
    rows = records(
        con,
        """
        select funnel_dropoffs.conversation_id, funnel_dropoffs.conversation_date, funnel_dropoffs.channel,
               funnel_dropoffs.outcome, funnel_dropoffs.last_user_message
        from marts.funnel_dropoffs
        where funnel_dropoffs.funnel_name = ? and funnel_dropoffs.next_stage = ? and not funnel_dropoffs.window_open
        order by funnel_dropoffs.last_stage_reached_at desc nulls last, funnel_dropoffs.conversation_id
        limit ?
        """,
        [funnel, next_stage, CONVERSATIONS_LISTED],
    )
    for row in rows:
        row["last_user_message"] = mask_pii(row["last_user_message"])
    return rows


def transcript(con, conversation_id: str) -> list[dict]:
    """The conversation's messages in order, content masked."""
    if not has_table(con, "marts.fct_messages"):
        return []
    rows = records(
        con,
        """
        select fct_messages.message_order, fct_messages.message_at, fct_messages.event_type, fct_messages.content
        from marts.fct_messages
        where fct_messages.conversation_id = ?
        order by fct_messages.message_order
        """,
        [conversation_id],
    )
    for row in rows:
        row["who"] = "user" if row.pop("event_type") == "user_message" else "agent"
        row["content"] = mask_pii(row["content"])
    return rows


def _funnel_chart(rows: list[StageRow]):
    import plotly.graph_objects as go

    figure = go.Figure(
        go.Funnel(
            y=[row.stage for row in rows],
            x=[row.reached for row in rows],
            text=[
                f"{fmt.count(row.reached)} · {fmt.percent(row.conversion_from_start)} of start"
                for row in rows
            ],
            textinfo="text",
            marker={"color": ["#d62728" if row.is_major_drop_off else "#1f77b4" for row in rows]},
        )
    )
    figure.update_layout(height=60 + 55 * len(rows), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return figure


def _stage_table(rows: list[StageRow]):
    import pandas as pd

    return pd.DataFrame(
        {
            "stage": [row.stage for row in rows],
            "reached": [fmt.count(row.reached) for row in rows],
            "from previous": [fmt.percent(row.conversion_rate) for row in rows],
            "from start": [fmt.percent(row.conversion_from_start) for row in rows],
            "drop-off": [fmt.count(row.drop_off) for row in rows],
            "drop-off %": [fmt.percent(row.drop_off_rate) for row in rows],
            "median time from previous stage": [fmt.duration(row.median_seconds) for row in rows],
        }
    )


def render(con, snapshot) -> None:
    import streamlit as st

    st.title("Funnels")
    st.caption(
        "Whole history. Stages count every conversation that reached them, in any order; "
        "red stages lose more than the project's major drop-off threshold of the previous stage."
    )
    names = funnel_names(con)
    if not names:
        st.info("No funnels in this snapshot.")
        return
    for funnel, tab in zip(names, st.tabs(names), strict=True):
        with tab:
            rows = stages(con, funnel)
            left, right = st.columns([1, 1])
            left.plotly_chart(_funnel_chart(rows), key=f"funnel-{funnel}")
            right.table(_stage_table(rows).set_index("stage"))
            worst = worst_step(rows)
            if worst is None:
                st.success("No stage loses anyone.")
                continue
            previous = rows[rows.index(worst) - 1]
            st.subheader(f"Worst step: {previous.stage} → {worst.stage} ({fmt.percent(worst.drop_off_rate)} drop off)")
            messages = last_messages_at(con, funnel, worst.stage)
            if messages:
                st.markdown("**Most frequent last user messages of those who stopped** (personal data masked)")
                st.table(
                    {"last user message": [message for message, _ in messages],
                     "conversations": [fmt.count(number) for _, number in messages]}
                )
            stopped = stopped_conversations(con, funnel, worst.stage)
            if not stopped:
                continue
            choice = st.selectbox(
                "Read a transcript of a conversation that stopped here",
                [row["conversation_id"] for row in stopped],
                format_func=lambda conversation_id, stopped=stopped: next(
                    f"{row['conversation_id']} · {row['conversation_date']} · {row['channel']} · {row['outcome']}"
                    for row in stopped
                    if row["conversation_id"] == conversation_id
                ),
                key=f"transcript-{funnel}",
            )
            for message in transcript(con, choice):
                with st.chat_message("user" if message["who"] == "user" else "assistant"):
                    st.text(message["content"] or "(empty)")
                    st.caption(f"{message['message_at']:%Y-%m-%d %H:%M:%S} UTC")


PAGE = Page(title="Funnels", url_path="funnels", icon=":material/filter_alt:", order=20, render=render)
