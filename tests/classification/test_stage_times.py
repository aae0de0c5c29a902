"""Every classifier stage has a time (contract v1.3): the classifier names the message whose text
shows the stage, and that message's timestamp is the stage's ``reached_at``.

Rules: the first message at which the stage's rule holds over the messages up to it. LLM: the
message it names, by its number in the transcript it was shown; a number it was not shown (out
of range, not an integer, left out of a long transcript's middle) names nothing. Rows classified
before messages were named (the previous rules and prompt versions) are classified again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
from support.fake_llm_server import FakeLLMServer, transcript_of
from support.llm_classifier import make_warehouse, settings_for

from convo_warehouse.lib.classify.llm import LLMClassifier, TranscriptItem, parse_answer
from convo_warehouse.lib.classify.rules import load_rules, rules_path
from convo_warehouse.lib.classify.runner import classify_warehouse
from convo_warehouse.lib.classify.stages import STAGES

# the full journey: each stage first shows in a known message (1-based; event ids "<cid>-<n>")
JOURNEY = [
    ("user", "my order 123 never arrived"),
    ("agent", "Hello, sorry about that! Let me check order 123 for you."),  # greeted, problem_identified
    ("agent", "It was lost. I can send a replacement today, would that work?"),  # solution_proposed
    ("user", "yes please"),  # solution_accepted
    ("agent", "Done. The replacement has been shipped."),  # resolved
    ("user", "got it today, thanks!"),
]
JOURNEY_MESSAGES = {"greeted": 2, "problem_identified": 2, "solution_proposed": 3, "solution_accepted": 4,
                    "resolved": 5}
# problem_identified is reached only through solution_proposed (implied_by): at the proposal
IMPLIED = [("user", "my app crashes"), ("agent", "ok"), ("agent", "Please update the app to version 2.1.")]


def stored(con) -> dict[tuple[str, str], tuple[bool, str | None, str]]:
    rows = con.execute(
        "select conversation_id, stage, reached, message_event_id, classifier from classification.stage_classifications"
    ).fetchall()
    return {(row[0], row[1]): row[2:] for row in rows}


@pytest.fixture
def server():
    with FakeLLMServer() as running:
        yield running


def test_rules_name_the_first_message_that_reaches_each_stage():
    con = make_warehouse({"journey": JOURNEY, "implied": IMPLIED})
    classify_warehouse(con, "rules", judge=False)
    rows = stored(con)
    for stage, number in JOURNEY_MESSAGES.items():
        assert rows[("journey", stage)][:2] == (True, f"journey-{number}"), stage
    assert rows[("implied", "solution_proposed")][:2] == (True, "implied-3")
    assert rows[("implied", "problem_identified")][:2] == (True, "implied-3")
    # a stage not reached names no message
    assert rows[("implied", "resolved")][:2] == (False, None)
    assert all((reached and message is not None) or (not reached and message is None)
               for reached, message, _ in rows.values())


def test_a_stage_reached_then_taken_back_names_no_message():
    # resolved at message 3 ("it works now"), taken back at 4 ("still not working" weighs -1): not
    # reached, so no message (tests/live/test_stage_rules_python_equals_sql.py checks, on thousands of
    # transcripts, that a stage reached in the end names the message the live tally first reached it at)
    lost = [("user", "printer prints blank"), ("agent", "Please restart it."), ("user", "it works now"),
            ("user", "still not working")]
    con = make_warehouse({"lost": lost})
    classify_warehouse(con, "rules", judge=False)
    assert stored(con)[("lost", "resolved")][:2] == (False, None)
    assert stored(con)[("lost", "solution_proposed")][:2] == (True, "lost-2")


def _naming_answer(body: dict) -> dict:
    """greeted: the first agent message; resolved: the last message; problem_identified: a number
    out of range; solution_proposed: a number given as text; solution_accepted: the old boolean."""
    messages = transcript_of(body)
    first_agent = next((item["n"] for item in messages if item.get("role") == "agent"), None)
    last = max(item["n"] for item in messages if "n" in item)
    return {"kind": "ok", "content": json.dumps({
        "greeted": {"reached": True, "message": first_agent},
        "problem_identified": {"reached": True, "message": 99},
        "solution_proposed": {"reached": True, "message": str(first_agent)},
        "solution_accepted": True,
        "resolved": {"reached": True, "message": last},
    })}


def test_llm_names_messages_and_a_reference_it_cannot_name_gives_none(server):
    server.default = _naming_answer
    con = make_warehouse({"journey": JOURNEY})
    stats = classify_warehouse(con, "llm", settings_for(server), judge=False)
    assert stats.by_llm == 1
    rows = stored(con)
    assert rows[("journey", "greeted")] == (True, "journey-2", "llm")
    assert rows[("journey", "resolved")] == (True, "journey-6", "llm")
    for stage in ("problem_identified", "solution_proposed", "solution_accepted"):
        assert rows[("journey", stage)] == (True, None, "llm"), stage
    # the prompt numbers the messages and asks for them
    prompt = server.requests[0]["messages"]
    assert '"message"' in prompt[0]["content"] and [item["n"] for item in transcript_of(server.requests[0])] == [
        1, 2, 3, 4, 5, 6]


def test_a_message_left_out_of_a_long_transcript_cannot_be_named(server):
    long = [("user", "my order never arrived")] + [("agent", f"update {index}: " + "x" * 200) for index in range(30)]
    seen = {}

    def answer(body):
        shown = [item["n"] for item in transcript_of(body) if "n" in item]
        seen["shown"] = shown
        hidden = next(n for n in range(1, len(long) + 1) if n not in shown)
        return {"kind": "ok", "content": json.dumps({
            "greeted": {"reached": True, "message": hidden}, "problem_identified": False,
            "solution_proposed": False, "solution_accepted": False,
            "resolved": {"reached": True, "message": shown[-1]}})}

    server.default = answer
    [result] = LLMClassifier(settings_for(server, max_transcript_chars=2000)).classify_many_sync(
        [TranscriptItem("long", "h", long)])
    assert len(seen["shown"]) < len(long)  # the middle was left out
    assert result.labels == {stage: stage in ("greeted", "resolved") for stage in STAGES}
    assert result.labels.messages == {"greeted": None, "problem_identified": None, "solution_proposed": None,
                                      "solution_accepted": None, "resolved": len(long)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"reached": True, "message": 3}, (True, 3)),
        ({"reached": True, "message": None}, (True, None)),
        ({"reached": True}, (True, None)),
        ({"reached": True, "message": "3"}, (True, None)),
        ({"reached": True, "message": 2.5}, (True, None)),
        ({"reached": True, "message": True}, (True, None)),
        ({"reached": False, "message": 3}, (False, None)),  # a message for a stage not reached means nothing
        (True, (True, None)),
        (False, (False, None)),
    ],
)
def test_message_references_are_validated(value, expected):
    answer = {stage: False for stage in STAGES} | {"greeted": value}
    labels = parse_answer(json.dumps(answer))
    assert (labels["greeted"], labels.messages["greeted"]) == expected


@pytest.mark.parametrize("value", [{"message": 3}, {"reached": "yes", "message": 3},
                                   {"reached": True, "message": 3, "why": "hello"}, 1, None])
def test_a_stage_value_that_is_not_a_reached_flag_is_an_invalid_answer(value):
    from convo_warehouse.lib.classify.llm import InvalidAnswer

    with pytest.raises(InvalidAnswer):
        parse_answer(json.dumps({stage: False for stage in STAGES} | {"greeted": value}))


def test_rows_of_the_previous_versions_are_classified_again(server):
    """Rows written before the classifiers named messages carry the rules version of the rules
    file alone (rules) or prompt version support-stages-v1 (llm): no longer acceptable, so they
    are classified again and get their messages."""
    con = make_warehouse({"journey": JOURNEY})
    classify_warehouse(con, "rules", judge=False)
    text = rules_path().read_text(encoding="utf-8")
    previous = "rules-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    assert load_rules().version != previous
    con.execute("update classification.stage_classifications set prompt_version = ?, message_event_id = null",
                [previous])
    again = classify_warehouse(con, "rules", judge=False)
    assert again.classified == 1 and again.cached == 0
    assert stored(con)[("journey", "greeted")][:2] == (True, "journey-2")

    server.default = _naming_answer
    classify_warehouse(con, "llm", settings_for(server), judge=False)
    assert server.calls == 1
    con.execute("update classification.stage_classifications set prompt_version = 'support-stages-v1', "
                "message_event_id = null")
    classify_warehouse(con, "llm", settings_for(server), judge=False)
    assert server.calls == 2 and stored(con)[("journey", "greeted")][1] == "journey-2"


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    from convo_warehouse.lib.generate import generate_events

    source = tmp_path_factory.mktemp("stage-times-landing")
    generate_events(source, conversations=60, days=1, seed=5, end_date="2024-05-02", progress=False)
    return source


def test_llm_stage_times_reach_fct_conversation_stages_and_the_funnel_times(landing, warehouse, server, monkeypatch):
    """Through the dbt build (the classifier in it, on the LLM path): a stage reached only by the
    LLM has the named message's time, none where it named none; the support funnel then has times
    between its stages."""
    server.default = _naming_answer
    shutil.copytree(landing, warehouse.landing, dirs_exist_ok=True)
    warehouse.load()
    for name, value in {"CONVO_CLASSIFIER": "llm", "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "k",
                        "CONVO_LLM_MODEL": "fake-model", "CONVO_LLM_TIMEOUT": "5", "CONVO_QUALITY_JUDGE": "0"}.items():
        monkeypatch.setitem(os.environ, name, value)
    warehouse.build("+fct_conversation_stages +funnel_summary")
    rows = warehouse.query(
        """
        select fct_conversation_stages.stage, fct_conversation_stages.reached_at, named.event_at
        from marts.fct_conversation_stages
        inner join staging.stg_stage_classifications as classified
            on fct_conversation_stages.conversation_id = classified.conversation_id
            and fct_conversation_stages.funnel_name = classified.funnel_name
            and fct_conversation_stages.stage = classified.stage
        left join staging.stg_events as named on classified.message_event_id = named.event_id
        where fct_conversation_stages.source = 'llm'
        """
    )
    by_stage: dict[str, list] = {}
    for stage, reached_at, named_at in rows:
        by_stage.setdefault(stage, []).append((reached_at, named_at))
    assert set(by_stage) >= {"greeted", "problem_identified", "solution_proposed"}
    assert all(reached_at == named_at and reached_at is not None for reached_at, named_at in by_stage["greeted"])
    for stage in ("problem_identified", "solution_proposed", "solution_accepted"):
        assert all(reached_at is None for reached_at, _ in by_stage.get(stage, [])), stage
    medians = dict(warehouse.query(
        "select stage, median_seconds_from_first_stage from marts.funnel_summary where funnel_name = 'support'"))
    assert medians["greeted"] is not None and medians["greeted"] >= 0
