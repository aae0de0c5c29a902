"""Live: conversations in progress from the collector's live state, refreshing, and the interventions
panel from the snapshot (``marts.intervention_daily``).

The live part reads ``GET /v1/conversations?active=true`` and
``GET /v1/conversations/{id}`` of the collector at ``CONVO_COLLECTOR_URL``
(default http://127.0.0.1:8765) with the bearer token ``CONVO_COLLECTOR_TOKEN``
(else the first of ``CONVO_COLLECTOR_TOKENS``); it refreshes every
``CONVO_LIVE_REFRESH_SECONDS`` (5). The snapshot part is as fresh as the last
published run.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pandas as pd

from convo_warehouse.dashboard import format as fmt
from convo_warehouse.dashboard.data import frame, has_table
from convo_warehouse.dashboard.views import Page
from convo_warehouse.lib.classify.stages import STAGES


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


def stage_table(detail: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [{"stage": item["stage"], "reached": "yes" if item["reached"] else "no",
          "first reached (UTC)": (item["first_reached_at"] or "")[:19].replace("T", " ")}
         for item in detail["stages"]],
        columns=["stage", "reached", "first reached (UTC)"],
    )


def intervention_summary(con, days: int = 14) -> pd.DataFrame:
    """Per rule over the last ``days`` days of the snapshot: fired and what happened afterwards."""
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


def intervention_days(con) -> pd.DataFrame:
    if not has_table(con, "marts.intervention_daily"):
        return pd.DataFrame()
    return frame(con, "select triggered_date, rule_name, interventions from marts.intervention_daily "
                      "order by triggered_date, rule_name")


def render(con, snapshot) -> None:
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
        st.dataframe(table, hide_index=True)
        chosen = st.selectbox("Conversation", table["conversation"].tolist(), key="live_conversation")
        if chosen:
            try:
                detail = fetch_live("/v1/conversations/" + urllib.parse.quote(chosen, safe=""))
            except LiveUnreachable as error:
                st.warning(str(error))
                return
            left, right = st.columns(2)
            left.dataframe(stage_table(detail), hide_index=True)
            right.dataframe(pd.DataFrame(detail["last_messages"], columns=["role", "text", "at"]), hide_index=True)

    in_progress()

    st.subheader("Interventions (snapshot)")
    summary = intervention_summary(con)
    if summary.empty:
        st.info("No intervention in the snapshot yet (marts.intervention_daily).")
        return
    st.dataframe(summary, hide_index=True)
    days = intervention_days(con)
    st.plotly_chart(px.bar(days, x="triggered_date", y="interventions", color="rule_name",
                           labels={"triggered_date": "day (UTC)", "rule_name": "rule"}))
    outcomes = summary.melt(id_vars="rule_name", value_vars=["handed_off", "resolved", "abandoned", "in_progress",
                                                             "unresolved"], var_name="afterwards", value_name="count")
    st.plotly_chart(px.bar(outcomes, x="rule_name", y="count", color="afterwards",
                           labels={"rule_name": "rule"}))


PAGE = Page(title="Live", url_path="live", icon=":material/bolt:", order=70, render=render)
