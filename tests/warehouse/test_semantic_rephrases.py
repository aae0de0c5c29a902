"""Semantic rephrases end to end, on the real all-MiniLM-L6-v2: hand-written chats -> loader ->
the pipeline's dbt step without an embedding model (the contract's word-overlap rule decides
is_frustrated), then a second batch (a new chat, a late message of another, a second model) with
CONVO_EMBEDDING_MODEL set (the classifier step embeds the user messages; the conversations they
belong to are recomputed), then a full refresh of the same project, which must equal the
incremental result (the model calls' costs included). The counts are checked against a recomputation in pandas from
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
# the second batch: a new chat, and w1's user asking once more (answered by another model)
BATCH2 = {
    "n2": (["Why was my card charged twice?", "My card was charged twice", "hello?"], "conversation_completed"),
    "w1": (["where is my order 12345, I asked four times"], None),
}
COMPARED = ("int_user_messages_compared", "fct_conversation_rephrases", "metrics_by_conversation",
            "fct_conversation_models")


def chat_events(conversation_id: str, messages: list[str], ending: str | None, batch: int = 1) -> list[dict]:
    """A chat of ``messages`` (batch 2: an hour later, answered by another model)."""
    at = DAY + dt.timedelta(minutes=10 * sorted({*CHATS, *BATCH2}).index(conversation_id), hours=batch - 1)
    model = "gpt-4o-mini" if batch == 1 else "claude-3-5-sonnet"
    events = [("conversation_started", {"agent_id": "support-ava"})] if conversation_id not in CHATS or batch == 1 else []
    for message in messages:
        events += [("user_message", {"content": message}),
                   ("agent_message", {"content": "Sorry, could you tell me more?", "model": model,
                                      "input_tokens": 800, "output_tokens": 12})]
    if ending:
        events.append((ending, {}))
    return [
        {"event_id": f"{conversation_id}-b{batch}-{n:02d}", "conversation_id": conversation_id,
         "user_id": f"u-{conversation_id}", "event_type": event_type,
         "timestamp": (at + dt.timedelta(seconds=20 * n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
         "channel": "web", "properties": properties}
        for n, (event_type, properties) in enumerate(events)
    ]


def user_messages_per_chat() -> dict[str, int]:
    counts = {cid: len(messages) for cid, (messages, _) in CHATS.items()}
    for cid, (messages, _) in BATCH2.items():
        counts[cid] = counts.get(cid, 0) + len(messages)
    return counts


@pytest.fixture(scope="module")
def runs(tmp_path_factory, dbt_target_dir, embedding_model):
    """(warehouse, rows of COMPARED after the run without a model (and fct_conversations' rephrase
    counts then), after the second batch's run with it)."""
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
        without_model["contract_rephrase_counts"] = set(
            warehouse.query("select conversation_id, rephrase_count from marts.fct_conversations"))
        lines = [json.dumps(event) for cid, (messages, ending) in BATCH2.items()
                 for event in chat_events(cid, messages, ending, batch=2)]
        (warehouse.landing / "batch2.jsonl").write_text("\n".join(lines) + "\n")
        warehouse.load()
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
    contract = dict(without_model["contract_rephrase_counts"])
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
    user_messages = user_messages_per_chat()
    assert {cid: row["embedded_user_messages"] for cid, row in found.items()} == user_messages
    assert {cid: row["semantic_rephrase_count"] for cid, row in found.items()} == reference_semantic_counts(warehouse)
    for row in found.values():
        assert row["frustration_rephrase_method"] == "embedding"
        assert row["is_frustrated"] == (row["semantic_rephrase_count"] >= 3 and row["conversation_id"] not in ("n1", "n2"))
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
    assert len(with_model["fct_conversation_models"]) == len(CHATS) + len(BATCH2)  # w1 with two models


def test_each_models_calls_cost_its_price_on_the_day(runs):
    """Every agent message here reads 800 tokens and writes 12, on 2026-03-10: a conversation x
    model row costs its messages at the seed's latest price on or before that day."""
    warehouse, _, _ = runs
    prices = {}
    for model, price_in, price_out, valid_from in warehouse.query(
            "select model, input_price_per_million, output_price_per_million, valid_from from seeds.model_prices"):
        if valid_from <= DAY.date() and (model not in prices or valid_from > prices[model][2]):
            prices[model] = (price_in, price_out, valid_from)
    rows = warehouse.query("select conversation_id, model, agent_messages, unpriced_agent_messages, cost_usd "
                           "from marts.fct_conversation_models")
    assert {model for _, model, *_ in rows} == {"gpt-4o-mini", "claude-3-5-sonnet"}
    for _, model, messages, unpriced, cost in rows:
        price_in, price_out, _ = prices[model]
        assert unpriced == 0
        assert cost == pytest.approx(messages * (800 * price_in + 12 * price_out) / 1e6, rel=1e-12)
