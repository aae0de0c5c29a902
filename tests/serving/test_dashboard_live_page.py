"""The Live page: its data from a real collector's live state and from marts.intervention_daily,
and the page itself rendered by Streamlit's test runner."""

from __future__ import annotations

import datetime as dt
import json
import sys

import duckdb
import pytest

from support.capture import CollectorProcess
from convo_warehouse.dashboard.views import live
from convo_warehouse.lib.scope import Scope
from support.live import TOKEN, Script, WebhookReceiver, applied, send


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard-live")
    receiver = WebhookReceiver()
    process = CollectorProcess(root / "landing", None, TOKEN, "--webhook-url", receiver.url).start()
    script = Script("c-dash")
    send(process, script.event("user_message", "I need a human, my order 77 is lost"),
         script.event("agent_message", "Hello! Let me check order 77."))
    other = Script("c-done")
    send(process, other.event("user_message", "hi"), other.event("conversation_completed"))
    applied(process, "c-dash", 2)
    applied(process, "c-done", 1)
    yield process
    process.stop()
    receiver.close()


def test_active_conversations_come_from_the_live_state(collector):
    answer = live.fetch_live("/v1/conversations?active=true", collector.url, TOKEN)
    table = live.active_table(answer)
    assert table["conversation"].tolist() == ["c-dash"]  # c-done has ended
    row = table.iloc[0]
    assert row["stage"] == "problem_identified" and row["user turns"] == 1
    detail = live.fetch_live("/v1/conversations/c-dash", collector.url, TOKEN)
    stages = live.stage_table(detail)
    assert stages.set_index("stage")["reached"].to_dict()["greeted"] == "yes"


def test_an_unreachable_collector_says_where_and_what_to_do(collector):
    with pytest.raises(live.LiveUnreachable, match="cannot reach the collector at http://127.0.0.1:9"):
        live.fetch_live("/v1/conversations?active=true", "http://127.0.0.1:9", TOKEN, timeout=1)
    with pytest.raises(live.LiveUnreachable, match="answered 401"):
        live.fetch_live("/v1/conversations?active=true", collector.url, "wrong")


def snapshot_with_interventions() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("""create table marts.intervention_daily as select * from (values
        ('user_asked_for_human', date '2024-01-01', 4, 4, 3, 1, 0, 0, 0),
        ('user_asked_for_human', date '2024-01-20', 2, 2, 1, 0, 1, 0, 0),
        ('fallback_twice_in_a_row', date '2024-01-20', 1, 1, 0, 0, 0, 1, 0)
        ) as t(rule_name, triggered_date, interventions, conversations, handed_off, resolved, abandoned,
               in_progress, unresolved)""")
    return con


def test_intervention_panel_sums_the_last_days_per_rule():
    summary = live.intervention_summary(snapshot_with_interventions(), days=14)
    assert summary.to_dict("records") == [
        {"rule_name": "user_asked_for_human", "interventions": 2, "handed_off": 1, "resolved": 0, "abandoned": 1,
         "in_progress": 0, "unresolved": 0},
        {"rule_name": "fallback_twice_in_a_row", "interventions": 1, "handed_off": 0, "resolved": 0,
         "abandoned": 0, "in_progress": 1, "unresolved": 0},
    ]
    assert live.intervention_summary(duckdb.connect()).empty  # an older snapshot without the mart


def snapshot_with_scoped_interventions() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute("""create table marts.fct_conversations as select * from (values
        ('a', date '2024-01-01', 'web', 'a1', 'production'),
        ('b', date '2024-01-02', 'web', 'a1', 'development'),
        ('c', date '2024-01-02', 'sms', 'a1', 'production'),
        ('d', date '2024-01-03', null, 'a1', 'production')
        ) as t(conversation_id, conversation_date, channel, agent_id, environment)""")
    con.execute("""create table marts.fct_interventions as select * from (values
        ('a', 'user_asked_for_human', date '2024-01-01', 'handed_off'),
        ('a', 'negative_sentiment_twice', date '2024-01-01', 'resolved'),
        ('b', 'user_asked_for_human', date '2024-01-02', 'abandoned'),
        ('c', 'user_asked_for_human', date '2024-01-02', 'resolved'),
        ('d', 'user_asked_for_human', date '2024-01-03', 'in_progress')
        ) as t(conversation_id, rule_name, triggered_date, outcome_after)""")
    return con


def test_intervention_panel_follows_the_period_and_filters():
    """The snapshot part of the page counts the interventions triggered in the sidebar's period on
    the conversations its filters keep (an unknown channel is 'unknown', development left out)."""
    con = snapshot_with_scoped_interventions()
    everything = live.intervention_summary(con, scope=Scope())
    assert everything.set_index("rule_name")["interventions"].to_dict() == {
        "user_asked_for_human": 4, "negative_sentiment_twice": 1}
    scoped = live.intervention_summary(con, scope=Scope(start=dt.date(2024, 1, 2), channels=("web", "unknown"),
                                                        include_development=False))
    assert scoped.to_dict("records") == [
        {"rule_name": "user_asked_for_human", "interventions": 1, "handed_off": 0, "resolved": 0, "abandoned": 0,
         "in_progress": 1, "unresolved": 0},
    ]
    web = live.intervention_summary(con, scope=Scope(end=dt.date(2024, 1, 2), channels=("web",)))
    assert web.set_index("rule_name")[["interventions", "handed_off", "abandoned"]].to_dict("index") == {
        "user_asked_for_human": {"interventions": 2, "handed_off": 1, "abandoned": 1},
        "negative_sentiment_twice": {"interventions": 1, "handed_off": 0, "abandoned": 0},
    }
    days = live.intervention_days(con, scope=Scope(channels=("sms",)))
    assert [(row["triggered_date"].date(), row["rule_name"], row["interventions"])
            for row in days.to_dict("records")] == [(dt.date(2024, 1, 2), "user_asked_for_human", 1)]


def test_the_page_renders_live_conversations_and_the_panel(collector, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CONVO_COLLECTOR_URL", collector.url)
    monkeypatch.setenv("CONVO_COLLECTOR_TOKEN", TOKEN)
    # Streamlit runs the page as sys.modules["__main__"] and leaves it there: a process that
    # multiprocessing later spawns from this pytest process (the collector's live worker in
    # test_live_collector.py) would re-run that page as its main module and die.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])

    def page() -> None:
        import duckdb

        from convo_warehouse.dashboard.views import ViewContext, live
        from convo_warehouse.lib.scope import Scope

        con = duckdb.connect()
        con.execute("create schema marts")
        con.execute("create table marts.fct_conversations as select 'c1' as conversation_id, "
                    "date '2024-01-01' as conversation_date, '![](https://host/beacon)' as channel, 'a1' as agent_id, "
                    "'production' as environment")
        con.execute("create table marts.fct_interventions as select 'c1' as conversation_id, "
                    "'user_asked_for_human' as rule_name, date '2024-01-01' as triggered_date, "
                    "'handed_off' as outcome_after")
        # a channel value from events (or a shared URL) that is Markdown: shown as text
        live.render(ViewContext(con=con, snapshot=None, scope=Scope(channels=("![](https://host/beacon)",)),
                                choice=None))

    app = AppTest.from_function(page, default_timeout=60).run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Live"
    shown = json.dumps([frame.value.to_dict("records") for frame in app.dataframe], default=str)
    assert "c-dash" in shown and "c-done" not in shown.split("first reached")[0]
    assert "user_asked_for_human" in shown  # the channel filter kept c1's intervention
    captions = [caption.value for caption in app.caption]
    assert any(r"\!\[\]\(https\://host/beacon\)" in caption for caption in captions), captions
    assert not any("![](" in caption for caption in captions)
    assert [metric.value for metric in app.metric][0] == "1"
