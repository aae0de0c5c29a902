"""Funnels: each funnel in its declared reading (the other one click away), where people stop, and their transcripts.

Stage numbers come from ``lib/funnel_views.py`` (the same function
``convo-warehouse funnel`` and the read API use) over the sidebar's period
and filters: no rate above 100%, no negative drop-off. The most frequent last
user messages and the transcripts (``marts.fct_messages``) are masked with
``lib/classify/pii.py`` and shown as plain text. Below the funnels, the ten
user turns at which the period's conversations were abandoned most
(``marts.abandon_turn_daily``: the sidebar's filters apply, but for the
experiment variant, which the mart has no column for).
"""

from __future__ import annotations

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.data import has_table, records
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib import funnel_views
from convo_warehouse.lib.classify.pii import mask_pii, mask_transcript
from convo_warehouse.lib.scope import Scope, scope_cte

MESSAGES_SHOWN = 5
ABANDON_TURNS_SHOWN = 10
CONVERSATIONS_LISTED = 50
READING_LABELS = {"any_order": "any order", "in_order": "in order (nested)"}
READING_HELP = {
    "any_order": "A stage counts every conversation that reached it, whatever came before; shares are of the "
                 "conversations that entered the funnel, and 'from previous' is the share of those that reached "
                 "the previous stage that also reached this one.",
    "in_order": "A stage counts a conversation only when it reached every earlier stage first: each stage is "
                "a subset of the one before.",
}


def last_messages_at(con, funnel: str, next_stage: str, scope: Scope) -> list[tuple[str, int]]:
    """The most frequent last user messages of the scope's conversations that stopped before ``next_stage``, masked."""
    return [(mask_pii(message), count)
            for message, count in funnel_views.stopped_before(con, funnel, next_stage, scope, MESSAGES_SHOWN)]


def stopped_conversations(con, funnel: str, next_stage: str, scope: Scope) -> list[dict]:
    """The scope's conversations that stopped right before ``next_stage`` (newest first), last message masked."""
    scope_sql, params = scope_cte(scope)
    rows = records(
        con,
        f"""
        with scope as ({scope_sql})
        select funnel_dropoffs.conversation_id, funnel_dropoffs.conversation_date, funnel_dropoffs.channel,
               funnel_dropoffs.outcome, funnel_dropoffs.last_user_message
        from marts.funnel_dropoffs
        inner join scope on funnel_dropoffs.conversation_id = scope.conversation_id
        where funnel_dropoffs.funnel_name = ? and funnel_dropoffs.next_stage = ? and not funnel_dropoffs.window_open
        order by funnel_dropoffs.last_stage_reached_at desc nulls last, funnel_dropoffs.conversation_id
        limit ?
        """,
        [*params, funnel, next_stage, CONVERSATIONS_LISTED],
    )
    for row in rows:
        row["last_user_message"] = mask_pii(row["last_user_message"])
    return rows


def transcript(con, conversation_id: str) -> list[dict]:
    """The conversation's messages in order, content masked (names across the whole transcript)."""
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
    # masked as one transcript: a name the user gave once is masked where the agent repeats it too
    masked = mask_transcript([(row["who"], row["content"] or "") for row in rows])
    for row, (_, text) in zip(rows, masked, strict=True):
        row["content"] = text
    return rows


def funnel_chart(view: funnel_views.FunnelView):
    """In order: a funnel, each stage nested in the one before. Any order: each stage's share of
    the conversations that entered (bars, since a later stage may be larger)."""
    import plotly.graph_objects as go

    names = [stage.stage for stage in view.stages]
    colours = ["#d62728" if stage.is_major_drop_off else "#1f77b4" for stage in view.stages]
    text = [f"{fmt.count(stage.count)} · {fmt.percent(stage.share_of_entered)} of entered" for stage in view.stages]
    if view.reading == "in_order":
        trace = go.Funnel(y=names, x=[stage.count for stage in view.stages], text=text, textinfo="text",
                          marker={"color": colours})
    else:
        trace = go.Bar(y=names, x=[stage.share_of_entered or 0 for stage in view.stages], orientation="h", text=text,
                       textposition="auto", marker={"color": colours})
    figure = go.Figure(trace)
    figure.update_layout(height=60 + 55 * len(names), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    if view.reading == "any_order":
        figure.update_yaxes(autorange="reversed")
        figure.update_xaxes(range=[0, 1], tickformat=".0%", title="share of the conversations that entered")
    return figure


def stage_frames(view: funnel_views.FunnelView) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table shown, its raw values for the CSV)."""
    stages = view.stages
    shown = pd.DataFrame({
        "stage": [stage.stage for stage in stages],
        "reached": [fmt.count(stage.count) for stage in stages],
        "of entered": [fmt.percent(stage.share_of_entered) for stage in stages],
        "from previous": [fmt.percent(stage.from_previous) for stage in stages],
        "drop-off": [fmt.count(stage.drop_off) for stage in stages],
        "drop-off %": [fmt.percent(stage.drop_off_rate) for stage in stages],
        "median time from previous stage": [fmt.duration(stage.median_seconds_from_previous_stage) for stage in stages],
        "median time from first stage": [fmt.duration(stage.median_seconds_from_first_stage) for stage in stages],
    })
    raw = pd.DataFrame([{"funnel_name": view.funnel_name, "reading": view.reading, "entered": view.entered,
                         **stage.as_dict()} for stage in stages])
    return shown, raw


def abandon_turn_frames(turns: funnel_views.AbandonTurns) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table shown, its raw values for the CSV) of the top abandon turns."""
    shown = pd.DataFrame({
        "turn": [str(turn.turn) for turn in turns.turns],
        "abandoned conversations": [fmt.count(turn.conversations) for turn in turns.turns],
        "share of the abandoned": [fmt.percent(turn.share) for turn in turns.turns],
    })
    raw = pd.DataFrame([turn.as_dict() for turn in turns.turns], columns=["turn", "conversations", "share"])
    return shown, raw


def abandon_turn_chart(turns: funnel_views.AbandonTurns):
    """The top turns as bars, most abandoned on top."""
    import plotly.graph_objects as go

    figure = go.Figure(go.Bar(
        y=[f"turn {turn.turn}" for turn in turns.turns], x=[turn.conversations for turn in turns.turns],
        orientation="h", text=[fmt.percent(turn.share) for turn in turns.turns], textposition="auto",
    ))
    figure.update_layout(height=60 + 32 * len(turns.turns), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(title="abandoned conversations")
    return figure


def _abandon_turns(con, scope: Scope, period_words: str) -> None:
    import streamlit as st

    st.subheader("Where conversations are abandoned")
    turns = funnel_views.abandon_turns(con, scope, ABANDON_TURNS_SHOWN)
    ignored = " The experiment variant filter does not apply here." if turns.variant_ignored else ""
    st.caption(
        f"**{period_words}**; {fmt.markdown_safe(scope.describe(period=False))}. The user turns at which the "
        "period's abandoned conversations were abandoned "
        f"(the abandon event's turn, else the user turns so far), the {ABANDON_TURNS_SHOWN} most frequent; "
        f"{fmt.count(turns.abandoned)} abandoned conversations with a turn in all.{ignored}"
    )
    if not turns.turns:
        st.info("No conversation of the period and filters was abandoned.")
        return
    st.plotly_chart(abandon_turn_chart(turns), key="abandon-turns-chart")
    shown, raw = abandon_turn_frames(turns)
    tables.show(shown, raw, title="top abandon turns", key="abandon-turns")


def render(context) -> None:
    import streamlit as st

    con, scope = context.con, context.scope
    st.title("Funnels")
    st.caption(
        f"**{context.choice.period_words}**; {fmt.markdown_safe(scope.describe(period=False))}. Each funnel is shown in the reading its seed "
        "declares (seeds/funnel_stages.csv, counting), the other one a click away. Shares are never above 100%: "
        "the first stage's 'from previous' is its share of the conversations that entered the funnel. Red: a "
        "stage losing more than the project's major drop-off threshold."
    )
    names = funnel_views.funnel_names(con)
    if not names:
        st.info("No funnels in this snapshot.")
    else:
        _funnel_tabs(con, scope, names)
    _abandon_turns(con, scope, context.choice.period_words)


def _funnel_tabs(con, scope: Scope, names: list[str]) -> None:
    import streamlit as st

    for funnel, tab in zip(names, st.tabs(names), strict=True):
        with tab:
            declared = funnel_views.declared_reading(con, funnel)
            reading = st.segmented_control(
                "Reading", list(funnel_views.READINGS), default=declared, required=True,
                format_func=lambda name, declared=declared: READING_LABELS[name] + (
                    " (declared)" if name == declared else ""),
                key=f"reading-{funnel}", bind="query-params",
            ) or declared
            view = funnel_views.funnel_view(con, funnel, scope, reading)
            st.caption(f"{READING_HELP[reading]} {fmt.count(view.entered)} conversations entered the funnel.")
            if view.entered == 0:
                st.info("No conversation of the period and filters entered this funnel.")
                continue
            st.plotly_chart(funnel_chart(view), key=f"funnel-{funnel}")
            shown, raw = stage_frames(view)
            tables.show(shown, raw, title=f"{funnel} funnel ({reading})", key=f"stages-{funnel}")
            worst = view.worst_step()
            if worst is None:
                st.success("No stage loses anyone.")
                continue
            previous = view.previous_stage(worst)
            st.subheader(f"Worst step: {previous.stage} → {worst.stage} ({fmt.percent(worst.drop_off_rate)} drop off)")
            messages = last_messages_at(con, funnel, worst.stage, scope)
            if messages:
                st.markdown("**Most frequent last user messages of those who stopped** (personal data masked)")
                frame = pd.DataFrame({"last user message": [message for message, _ in messages],
                                      "conversations": [number for _, number in messages]})
                tables.show(frame, title=f"last messages before {worst.stage}", key=f"messages-{funnel}")
            stopped = stopped_conversations(con, funnel, worst.stage, scope)
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
