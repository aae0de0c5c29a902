"""Live: conversations in progress from the collector's live state, refreshing, and the interventions
panel from the snapshot (``marts.intervention_daily``).

The live part reads ``GET /v1/conversations?active=true`` and
``GET /v1/conversations/{id}`` of the collector at ``CONVO_COLLECTOR_URL``
(default http://127.0.0.1:8765) with a read key, ``CONVO_COLLECTOR_TOKEN``
(else the first of the deprecated ``CONVO_COLLECTOR_TOKENS``); the messages
shown are masked (``lib/classify/pii.py``), a name found in any of them
masked in all; every event-derived string is shown as plain text. It refreshes every
``CONVO_LIVE_REFRESH_SECONDS`` (5); it is what is happening now, so the
sidebar's period and filters do not apply to it. The snapshot part is as
fresh as the last published run and follows the sidebar: the interventions
triggered in the period, on the conversations the filters keep.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import dataclasses
import urllib.request

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard import tables
from convo_warehouse.dashboard.data import frame, has_table
from convo_warehouse.dashboard.views import Page, ViewContext
from convo_warehouse.lib.classify.pii import mask_transcript
from convo_warehouse.lib.classify.stages import STAGES
from convo_warehouse.lib.scope import Scope, scope_cte


class LiveUnreachable(RuntimeError):
    """The collector did not answer; the message says where it was asked and what to check."""


def collector_settings() -> tuple[str, str | None]:
    url = os.environ.get("CONVO_COLLECTOR_URL", "http://127.0.0.1:8765").rstrip("/")
    token = os.environ.get("CONVO_COLLECTOR_TOKEN") or next(
        (item.strip() for item in os.environ.get("CONVO_COLLECTOR_TOKENS", "").split(",") if item.strip()), None)
    return url, token


def fetch_live(path: str, url: str | None = None, token: str | None = None, timeout: float = 5.0) -> dict:
    """One GET of the collector's live state; ``LiveUnreachable`` with the reason when it fails."""
    default_url, default_token = collector_settings()
    url, token = url or default_url, token or default_token
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        detail = (error.read() or b"").decode("utf-8", "replace")[:300]
        raise LiveUnreachable(f"{url}{path} answered {error.code}: {detail}") from error
    except (OSError, ValueError) as error:
        raise LiveUnreachable(f"cannot reach the collector at {url} ({error}); start it with `make collect` "
                              "or set CONVO_COLLECTOR_URL") from error


def active_table(answer: dict) -> pd.DataFrame:
    """The conversations in progress as rows for the page, most recently active first."""
    rows = [
        {
            "conversation": item["conversation_id"],
            "stage": item["stage"] or "-",
            "user turns": item["user_turns"],
            "sentiment": None if item["sentiment"] is None else round(item["sentiment"], 2),
            "interventions": ", ".join(item["interventions"]) or "-",
            "last event (UTC)": (item["last_event_at"] or "")[:19].replace("T", " "),
        }
        for item in answer.get("conversations", [])
    ]
    return pd.DataFrame(rows, columns=["conversation", "stage", "user turns", "sentiment", "interventions",
                                       "last event (UTC)"])


def messages_table(detail: dict) -> pd.DataFrame:
    """The conversation's last messages, masked as one transcript (a name the user gave once is
    masked where the agent repeats it too)."""
    messages = detail.get("last_messages", [])
    masked = mask_transcript([(item.get("role") or "", item.get("text") or "") for item in messages])
    return pd.DataFrame([{"role": role, "text": text, "at": item.get("at")}
                         for (role, text), item in zip(masked, messages, strict=True)],
                        columns=["role", "text", "at"])


def stage_table(detail: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [{"stage": item["stage"], "reached": "yes" if item["reached"] else "no",
          "first reached (UTC)": (item["first_reached_at"] or "")[:19].replace("T", " ")}
         for item in detail["stages"]],
        columns=["stage", "reached", "first reached (UTC)"],
    )


def _scoped_interventions(scope: Scope) -> tuple[str, list]:
    """The interventions of ``scope`` (from marts.fct_interventions): triggered in its period, on
    the conversations its filters keep, as a CTE body with its parameters."""
    filters_sql, params = scope_cte(dataclasses.replace(scope, start=None, end=None))
    conditions = []
    if scope.start is not None:
        conditions.append("fct_interventions.triggered_date >= ?")
        params.append(scope.start)
    if scope.end is not None:
        conditions.append("fct_interventions.triggered_date <= ?")
        params.append(scope.end)
    where = f"where {' and '.join(conditions)}" if conditions else ""
    sql = f"""
        select fct_interventions.rule_name, fct_interventions.triggered_date, fct_interventions.outcome_after
        from marts.fct_interventions
        inner join ({filters_sql}) as kept on fct_interventions.conversation_id = kept.conversation_id
        {where}
    """
    return sql, params


def intervention_summary(con, days: int = 14, scope: Scope | None = None) -> pd.DataFrame:
    """Per rule: fired and what happened afterwards. Without ``scope``, the last ``days`` days of
    marts.intervention_daily; with the sidebar's scope, its interventions from marts.fct_interventions
    (the same counts intervention_daily sums)."""
    if scope is not None:
        if not has_table(con, "marts.fct_interventions"):
            return pd.DataFrame()
        sql, params = _scoped_interventions(scope)
        return frame(
            con,
            f"""
            with interventions as ({sql})
            select
                interventions.rule_name,
                count(*) as interventions,
                count(case when interventions.outcome_after = 'handed_off' then 1 end) as handed_off,
                count(case when interventions.outcome_after = 'resolved' then 1 end) as resolved,
                count(case when interventions.outcome_after = 'abandoned' then 1 end) as abandoned,
                count(case when interventions.outcome_after = 'in_progress' then 1 end) as in_progress,
                count(case when interventions.outcome_after = 'unresolved' then 1 end) as unresolved
            from interventions
            group by interventions.rule_name
            order by interventions desc, interventions.rule_name
            """,
            params,
        )
    if not has_table(con, "marts.intervention_daily"):
        return pd.DataFrame()
    return frame(
        con,
        """
        select
            intervention_daily.rule_name,
            sum(intervention_daily.interventions) as interventions,
            sum(intervention_daily.handed_off) as handed_off,
            sum(intervention_daily.resolved) as resolved,
            sum(intervention_daily.abandoned) as abandoned,
            sum(intervention_daily.in_progress) as in_progress,
            sum(intervention_daily.unresolved) as unresolved
        from marts.intervention_daily
        where intervention_daily.triggered_date > (select max(triggered_date) from marts.intervention_daily) - ?
        group by intervention_daily.rule_name
        order by interventions desc, intervention_daily.rule_name
        """,
        [days],
    )


def intervention_days(con, scope: Scope | None = None) -> pd.DataFrame:
    """Interventions per day and rule (of ``scope`` when given, as intervention_summary)."""
    if scope is not None:
        if not has_table(con, "marts.fct_interventions"):
            return pd.DataFrame()
        sql, params = _scoped_interventions(scope)
        return frame(con, f"with interventions as ({sql}) select triggered_date, rule_name, count(*) as interventions "
                          "from interventions group by all order by triggered_date, rule_name", params)
    if not has_table(con, "marts.intervention_daily"):
        return pd.DataFrame()
    return frame(con, "select triggered_date, rule_name, interventions from marts.intervention_daily "
                      "order by triggered_date, rule_name")


def render(context: ViewContext) -> None:
    import plotly.express as px
    import streamlit as st

    st.title("Live")
    url, _ = collector_settings()
    st.caption(f"Conversations in progress from the collector's live state ({url}), refreshing; "
               "interventions from the published snapshot.")
    refresh = float(os.environ.get("CONVO_LIVE_REFRESH_SECONDS", "5"))

    @st.fragment(run_every=refresh)
    def in_progress() -> None:
        try:
            answer = fetch_live("/v1/conversations?active=true&limit=200")
        except LiveUnreachable as error:
            st.warning(str(error))
            return
        table = active_table(answer)
        first, second, third = st.columns(3)
        first.metric("Conversations in progress", fmt.count(len(table)))
        second.metric("With an intervention", fmt.count(int((table["interventions"] != "-").sum()) if len(table) else 0))
        third.metric("Resolved so far", fmt.count(int((table["stage"] == STAGES[-1]).sum()) if len(table) else 0))
        if table.empty:
            st.info("No conversation in progress.")
            return
        tables.show(table, title="Conversations in progress", key="live-active")
        chosen = st.selectbox("Conversation", table["conversation"].tolist(), key="live_conversation")
        if chosen:
            try:
                detail = fetch_live("/v1/conversations/" + urllib.parse.quote(chosen, safe=""))
            except LiveUnreachable as error:
                st.warning(str(error))
                return
            left, right = st.columns(2)
            tables.show(stage_table(detail), title=f"Stages of {chosen}", key="live-stages", container=left)
            tables.show(messages_table(detail), title=f"Last messages of {chosen}", key="live-messages",
                        container=right)

    in_progress()

    st.subheader("Interventions (snapshot)")
    st.caption(fmt.markdown_safe(context.scope.describe()))
    summary = intervention_summary(context.con, scope=context.scope)
    if summary.empty:
        st.info("No intervention in the snapshot for this period and filters (marts.fct_interventions).")
        return
    tables.show(summary, title="Interventions", key="live-interventions")
    days = intervention_days(context.con, scope=context.scope)
    st.plotly_chart(px.bar(days, x="triggered_date", y="interventions", color="rule_name",
                           labels={"triggered_date": "day (UTC)", "rule_name": "rule"}))
    outcomes = summary.melt(id_vars="rule_name", value_vars=["handed_off", "resolved", "abandoned", "in_progress",
                                                             "unresolved"], var_name="afterwards", value_name="count")
    st.plotly_chart(px.bar(outcomes, x="rule_name", y="count", color="afterwards",
                           labels={"rule_name": "rule"}))


PAGE = Page(title="Live", url_path="live", icon=":material/bolt:", order=70, render=render)
