"""Helpers for the LLM classifier tests: settings pointing at the local fake server, a tiny
in-memory warehouse of transcripts, and two transcripts the rules read differently."""

from __future__ import annotations

import duckdb

from support.fake_llm_server import FakeLLMServer

from convo_warehouse.lib.classify.llm import LLMSettings

def settings_for(server: FakeLLMServer, **overrides) -> LLMSettings:
    values = dict(
        base_url=server.base_url,
        api_key="test-key",
        model="fake-model",
        concurrency=8,
        timeout=1.0,
        max_attempts=3,
        backoff_base=0.01,
        backoff_max=0.05,
        circuit_breaker_failures=1000,
        price_input_per_1m=1.0,
        price_output_per_1m=2.0,
    )
    values.update(overrides)
    return LLMSettings(**values)


def make_warehouse(conversations: dict[str, list[tuple[str, str]]]) -> duckdb.DuckDBPyConnection:
    """A tiny in-memory warehouse with staging.stg_events of the real shape (the columns used)."""
    con = duckdb.connect()
    con.execute("create schema staging")
    con.execute(
        "create table staging.stg_events (event_id varchar, conversation_id varchar, event_type varchar, "
        "event_at timestamp, content varchar)"
    )
    rows = []
    for conversation_id, transcript in conversations.items():
        rows.append((f"{conversation_id}-0", conversation_id, "conversation_started", 0, None))
        for index, (role, content) in enumerate(transcript, start=1):
            rows.append((f"{conversation_id}-{index}", conversation_id, f"{role}_message", index, content))
    con.executemany(
        "insert into staging.stg_events values (?, ?, ?, timestamp '2025-01-01' + to_seconds(?), ?)", rows
    )
    return con


CLEAR = [("user", "my order 5 is late"), ("agent", "Hello! Sorry, let me check order 5."),
         ("agent", "I have shipped a replacement, it arrives tomorrow. Would that work?"),
         ("user", "yes perfect, got the tracking. thanks!")]


UNCERTAIN = [("user", "my app crashes, hmm"), ("agent", "Hi, please try updating the app."), ("user", "great")]
