"""Semantic rephrases end to end, on the real all-MiniLM-L6-v2: hand-written chats -> loader ->
the pipeline's dbt step without an embedding model (the contract's word-overlap rule decides
is_frustrated), then with CONVO_EMBEDDING_MODEL set (the classifier step embeds the user messages;
the conversations they belong to are recomputed), then a full refresh of the same project, which
must equal the incremental result. The counts are checked against a recomputation in pandas from
the stored embeddings and the staged messages, which shares no code with the models.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pytest

from support.warehouse import Warehouse

pytestmark = pytest.mark.embeddings

DAY = dt.datetime(2026, 3, 10, 9, 0)
# conversation -> (user messages, how it ends)
CHATS = {
    # the same request in other words each time (word overlap finds none), then the user leaves
    "p1": (["I can't log into my account", "Logging in to my account doesn't work",
            "I can't log in to my account at all", "I still cannot log into my account"], "conversation_abandoned"),
    # the same words again and again: word-overlap rephrases, never semantic ones (same wording)
    "r1": (["I need to talk to a human"] * 4, "handoff_requested"),
    # nearly the same words: both methods count them
    "w1": (["where is my order 12345", "where is my order 12345 please", "sorry, where is my order 12345",
            "I said where is my order 12345"], "handoff_requested"),
    # unrelated questions, resolved
    "n1": (["How do I reset my password?", "What are your opening hours?", "thanks"], "conversation_completed"),
}
COMPARED = ("int_user_messages_compared", "fct_conversation_rephrases", "metrics_by_conversation")


def chat_events(conversation_id: str, messages: list[str], ending: str) -> list[dict]:
    at = DAY + dt.timedelta(minutes=10 * list(CHATS).index(conversation_id))
    events = [("conversation_started", {"agent_id": "support-ava"})]
    for message in messages:
        events += [("user_message", {"content": message}),
                   ("agent_message", {"content": "Sorry, could you tell me more?", "model": "gpt-4o-mini",
                                      "input_tokens": 800, "output_tokens": 12})]
    events.append((ending, {}))
    return [
        {"event_id": f"{conversation_id}-{n:02d}", "conversation_id": conversation_id, "user_id": f"u-{conversation_id}",
         "event_type": event_type, "timestamp": (at + dt.timedelta(seconds=20 * n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
         "channel": "web", "properties": properties}
        for n, (event_type, properties) in enumerate(events)
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, dbt_target_dir, embedding_model):
    """(warehouse, rows of COMPARED after the run without a model, after the run with it)."""
    warehouse = Warehouse(tmp_path_factory.mktemp("semantic-rephrases"), dbt_target_dir)
    lines = [json.dumps(event) for cid, (messages, ending) in CHATS.items() for event in chat_events(cid, messages, ending)]
    (warehouse.landing / "chats.jsonl").write_text("\n".join(lines) + "\n")
    warehouse.load()
    warehouse.dbt("seed")
    mp = pytest.MonkeyPatch()
    try:
        mp.delenv("CONVO_EMBEDDING_MODEL", raising=False)
        warehouse.run_build()
        without_model = snapshot(warehouse)
        # the classifier runs inside the dbt step (in this process): it reads the setting there
        mp.setenv("CONVO_EMBEDDING_MODEL", str(embedding_model))
        warehouse.run_build()
        with_model = snapshot(warehouse)
    finally:
        mp.undo()
    return warehouse, without_model, with_model


def snapshot(warehouse: Warehouse) -> dict[str, set]:
    tables = {}
    for name in COMPARED:
        schema = "intermediate" if name.startswith("int_") else "marts"
        tables[name] = set(warehouse.query(f"select * from {schema}.{name}"))
    return tables


def rephrases(warehouse: Warehouse) -> dict[str, dict]:
    columns = ["conversation_id", "rephrase_count", "semantic_rephrase_count", "frustration_rephrase_method",
               "is_frustrated", "embedded_user_messages"]
    return {row[0]: dict(zip(columns, row, strict=True)) for row in warehouse.query(
        f"select {', '.join(columns)} from marts.fct_conversation_rephrases")}


def reference_semantic_counts(warehouse: Warehouse, threshold: float = 0.85) -> dict[str, int]:
    """Consecutive user messages (by time, then event_id), both with words, worded differently,
    cosine of their stored embeddings above the threshold."""
    rows = warehouse.query(
        "select stg_events.conversation_id, stg_events.event_at, stg_events.event_id, stg_events.content, "
        "message_embeddings.embedding from staging.stg_events inner join classification.message_embeddings "
        "on stg_events.event_id = message_embeddings.event_id where stg_events.event_type = 'user_message'"
    )
    by_conversation: dict[str, list] = {}
    for cid, at, event_id, content, embedding in sorted(rows, key=lambda row: (row[0], row[1], row[2])):
        by_conversation.setdefault(cid, []).append((re.findall(r"[a-z0-9']+", (content or "").lower()),
                                                    np.array(embedding, dtype=np.float64)))
    counts = {}
    for cid, messages in by_conversation.items():
        count = 0
        for (words_a, a), (words_b, b) in zip(messages, messages[1:]):
            cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
            count += bool(words_a and words_b and words_a != words_b and cosine > threshold)
        counts[cid] = count
    return counts


def test_without_a_model_the_word_overlap_rule_decides(runs):
    warehouse, without_model, _ = runs
    found = {row[0]: row for row in without_model["fct_conversation_rephrases"]}
    assert set(found) == set(CHATS)
    contract = dict(warehouse.query("select conversation_id, rephrase_count from marts.fct_conversations"))
    columns = [row[0] for row in warehouse.query("describe marts.fct_conversation_rephrases")]
    for cid, row in found.items():
        record = dict(zip(columns, row, strict=True))
        assert record["rephrase_count"] == contract[cid]
        assert record["semantic_rephrase_count"] is None and record["frustration_rephrase_method"] == "word_overlap"
        assert record["is_frustrated"] == (record["rephrase_count"] >= 3 and cid != "n1")
    # what the word-overlap rule misses here: p1 says the same thing in other words
    assert {cid for cid, row in found.items() if dict(zip(columns, row))["is_frustrated"]} == {"r1", "w1"}


def test_with_a_model_every_user_message_is_embedded_and_compared(runs):
    warehouse, _, _ = runs
    found = rephrases(warehouse)
    user_messages = {cid: len(messages) for cid, (messages, _) in CHATS.items()}
    assert {cid: row["embedded_user_messages"] for cid, row in found.items()} == user_messages
    assert {cid: row["semantic_rephrase_count"] for cid, row in found.items()} == reference_semantic_counts(warehouse)
    for row in found.values():
        assert row["frustration_rephrase_method"] == "embedding"
        assert row["is_frustrated"] == (row["semantic_rephrase_count"] >= 3 and row["conversation_id"] != "n1")
    # the model finds p1's rephrases and knows r1's repeats are not rephrasings
    assert found["p1"]["semantic_rephrase_count"] > found["p1"]["rephrase_count"]
    assert found["r1"]["semantic_rephrase_count"] == 0 < found["r1"]["rephrase_count"]
    run = warehouse.query("select embedding_model, messages_embedded from classification.classifier_runs "
                          "order by run_started_at desc limit 1")[0]
    assert run[0].startswith("all-MiniLM-L6-v2@") and run[1] == sum(user_messages.values())


def test_the_frustration_metric_counts_the_flag(runs):
    warehouse, _, _ = runs
    numerator, denominator = warehouse.query(
        "select sum(frustration_rate__numerator), sum(frustration_rate__denominator) "
        "from marts.metrics_by_conversation")[0]
    flagged = warehouse.scalar("select count(*) from marts.fct_conversation_rephrases where is_frustrated")
    started = warehouse.scalar("select count(*) from marts.fct_conversations where started")
    assert (numerator, denominator) == (flagged, started)


def test_a_full_refresh_equals_the_incremental_runs(runs, embedding_model, monkeypatch):
    warehouse, _, with_model = runs
    monkeypatch.setenv("CONVO_EMBEDDING_MODEL", str(embedding_model))
    warehouse.run_build("--full-refresh")
    assert snapshot(warehouse) == with_model
