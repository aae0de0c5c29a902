"""The optional LLM quality judge against a real HTTP server on 127.0.0.1: rubric labels stored
beside the stage classifications, cached, validated, PII-masked, and off unless asked for.
"""

from __future__ import annotations

import json

import pytest
from support.fake_llm_server import ALL_TRUE, FakeLLMServer
from support.llm_classifier import CLEAR, UNCERTAIN, make_warehouse, settings_for

from convo_warehouse.lib.classify.judge import JUDGE_PROMPT_VERSION, parse_judgment
from convo_warehouse.lib.classify.llm import InvalidAnswer
from convo_warehouse.lib.classify.runner import classify_warehouse

JUDGMENT = json.dumps({"resolution": "resolved", "user_frustration": "none", "reason": "The user got the tracking."})


def answer_by_task(body: dict) -> dict:
    """The judge prompt gets a judgment, the stage prompt gets stages."""
    system = body["messages"][0]["content"]
    return {"kind": "ok", "content": JUDGMENT if "judge the quality" in system else ALL_TRUE}


@pytest.fixture
def server():
    with FakeLLMServer(default=answer_by_task) as running:
        yield running


def judgments(con) -> dict[str, tuple]:
    rows = con.execute(
        "select conversation_id, resolution, user_frustration, reason, prompt_version "
        "from classification.conversation_judgments"
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def judge_requests(server) -> list[dict]:
    return [body for body in server.requests if "judge the quality" in body["messages"][0]["content"]]


def test_llm_mode_judges_every_conversation_once_and_keeps_the_stage_rows(server):
    con = make_warehouse({"a": CLEAR, "b": UNCERTAIN})
    stats = classify_warehouse(con, "llm", settings_for(server), judge=True)
    assert stats.judged == 2 and stats.judge_failed == 0
    assert judgments(con) == {
        "a": ("resolved", "none", "The user got the tracking.", JUDGE_PROMPT_VERSION),
        "b": ("resolved", "none", "The user got the tracking.", JUDGE_PROMPT_VERSION),
    }
    # the stage classifications are still there, from the stage prompt
    assert con.execute("select count(*) from classification.stage_classifications").fetchone()[0] == 10
    calls = server.calls
    again = classify_warehouse(con, "llm", settings_for(server), judge=True)
    assert again.judged == 0 and server.calls == calls  # cached: no call at all


def test_the_judge_is_off_unless_asked_for(server, monkeypatch):
    monkeypatch.delenv("CONVO_QUALITY_JUDGE", raising=False)
    con = make_warehouse({"a": CLEAR})
    classify_warehouse(con, "llm", settings_for(server))
    assert judge_requests(server) == []
    monkeypatch.setenv("CONVO_QUALITY_JUDGE", "1")
    classify_warehouse(con, "rules")  # the rules classifier never calls an endpoint
    assert judge_requests(server) == []
    classify_warehouse(con, "llm", settings_for(server))
    assert len(judge_requests(server)) == 1


def test_hybrid_judges_only_what_it_sends_to_the_llm(server):
    con = make_warehouse({"clear": CLEAR, "uncertain": UNCERTAIN})
    stats = classify_warehouse(con, "hybrid", settings_for(server), judge=True)
    assert stats.sent_to_llm == 1
    assert set(judgments(con)) == {"uncertain"}


def test_an_invalid_judgment_is_not_stored_and_is_tried_again(server):
    server.default = lambda body: (
        {"kind": "ok", "content": json.dumps({"resolution": "great", "user_frustration": "none", "reason": "x"})}
        if "judge the quality" in body["messages"][0]["content"]
        else {"kind": "ok", "content": ALL_TRUE}
    )
    con = make_warehouse({"a": CLEAR})
    stats = classify_warehouse(con, "llm", settings_for(server, max_attempts=2), judge=True)
    assert stats.judged == 0 and stats.judge_failed == 1
    assert judgments(con) == {}
    statuses = con.execute(
        "select status from classification.llm_calls where prompt_version = ?", [JUDGE_PROMPT_VERSION]
    ).fetchall()
    assert statuses == [("invalid_answer",), ("invalid_answer",)]
    server.default = answer_by_task
    assert classify_warehouse(con, "llm", settings_for(server), judge=True).judged == 1


def test_judge_prompts_carry_no_names_or_addresses(server):
    con = make_warehouse(
        {"a": [("user", "Hi, my name is Dana Whitfield, please send it to 5953 Maple Grove St"),
               ("agent", "Hello Dana, I've updated the address.")]}
    )
    classify_warehouse(con, "llm", settings_for(server), judge=True)
    [request] = judge_requests(server)
    sent = json.dumps(request)
    assert "Dana" not in sent and "Whitfield" not in sent and "Maple Grove" not in sent
    assert "#NAME#" in sent and "#ADDRESS#" in sent


@pytest.mark.parametrize(
    "answer",
    [
        '{"resolution": "resolved", "user_frustration": "none"}',  # no reason
        '{"resolution": "solved", "user_frustration": "none", "reason": "x"}',  # not a rubric label
        '{"resolution": "resolved", "user_frustration": "furious", "reason": "x"}',
        '{"resolution": "resolved", "user_frustration": "none", "reason": 3}',
        '{"resolution": "resolved", "user_frustration": "none", "reason": "x", "greeted": true}',
        "resolved, no frustration",
    ],
)
def test_judge_answers_outside_the_rubric_are_rejected(answer):
    with pytest.raises(InvalidAnswer):
        parse_judgment(answer)


def test_judge_reason_is_trimmed():
    parsed = parse_judgment(json.dumps({"resolution": "unresolved", "user_frustration": "high", "reason": "  a \n b " + "x" * 400}))
    assert parsed["resolution"] == "unresolved" and parsed["user_frustration"] == "high"
    assert parsed["reason"].startswith("a b x") and len(parsed["reason"]) == 300
