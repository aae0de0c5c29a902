"""The read API refuses foreign Host headers and cross-site requests as the collector does, and the
dashboard shows every event-derived string as plain text, labels included, with names masked across a
whole transcript (issue 47, items 9 and 10)."""

from __future__ import annotations

import sys
import types

import duckdb
import pandas as pd
import pytest
from starlette.testclient import TestClient

from convo_warehouse.api.app import ApiConfig, create_app


@pytest.fixture
def api(tmp_path):
    with TestClient(create_app(ApiConfig(serving_dir=tmp_path, allowed_origins=("https://bi.example",))),
                    base_url="http://127.0.0.1") as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 503),  # served (no snapshot published yet)
        ({"Host": "localhost:8600"}, 503),
        ({"Host": "attacker.example"}, 400),  # DNS rebinding: the page's own name
        ({"Origin": "https://evil.example"}, 403),  # another site's script
        ({"Sec-Fetch-Site": "cross-site"}, 403),  # an image or a no-cors fetch from another site
        ({"Origin": "https://bi.example"}, 503),  # a listed origin
    ],
    ids=["plain", "localhost", "foreign-host", "foreign-origin", "cross-site-fetch", "allowed-origin"],
)
def test_the_read_api_serves_its_own_host_and_site_only(api, headers, status):
    answer = api.get("/api/metrics", headers=headers)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert "refused" in answer.json()["error"]


class Recorder(types.SimpleNamespace):
    """Stands in for the streamlit module: records what the page asked it to draw."""

    def __init__(self) -> None:
        super().__init__(calls=[])

    def dataframe(self, *args, **kwargs) -> None:
        self.calls.append(("dataframe", args, kwargs))

    def download_button(self, label, *args, **kwargs) -> None:
        self.calls.append(("download_button", (label,), kwargs))


def test_a_conversation_id_in_a_label_is_plain_text(monkeypatch):
    from convo_warehouse.dashboard import tables

    recorder = Recorder()
    monkeypatch.setitem(sys.modules, "streamlit", recorder)
    hostile = "c-1 ![beacon](https://evil.example/b.png) [win](https://evil.example)"
    tables.show(pd.DataFrame({"a": [1]}), title=f"Stages of {hostile}", key="k")
    [(_, (label,), _)] = [call for call in recorder.calls if call[0] == "download_button"]
    assert "](" not in label and "![" not in label and "\\!\\[beacon\\]\\(https\\:" in label


def test_the_live_page_masks_names_across_the_whole_conversation():
    from convo_warehouse.dashboard.views import live

    detail = {"last_messages": [
        {"role": "user", "text": "Hi, this is Dana Whitfield, my card 4111 1111 1111 1111 failed", "at": "t1"},
        {"role": "agent", "text": "Sorry Dana, let me look", "at": "t2"},
        {"role": "user", "text": "Whitfield is the surname on the account", "at": "t3"},
    ]}
    shown = live.messages_table(detail)
    text = " ".join(shown["text"])
    assert "Dana" not in text and "Whitfield" not in text and "4111" not in text
    assert shown["text"].tolist()[1] == "Sorry #NAME#, let me look"


def test_the_funnels_transcript_masks_a_name_the_agent_repeats():
    from convo_warehouse.dashboard.views import funnels

    con = duckdb.connect()
    con.execute("""create schema marts;
        create table marts.fct_messages as select * from (values
            ('c1', 'user_message', timestamp '2026-11-20 10:00:00', 1, 'call me Priya, my parcel is late'),
            ('c1', 'agent_message', timestamp '2026-11-20 10:00:05', 2, 'Thanks Priya, I see order 12.')
        ) as t(conversation_id, event_type, message_at, message_order, content)""")
    assert [row["content"] for row in funnels.transcript(con, "c1")] == [
        "call me #NAME#, my parcel is late", "Thanks #NAME#, I see order 12."]
