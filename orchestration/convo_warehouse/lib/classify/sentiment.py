"""Sentiment of user messages from a small offline lexicon, set-based in DuckDB.

Every user message of the classified conversations gets a lexicon score
(-1..1) in ``classification.message_sentiment`` with ``sentiment_source =
'lexicon'`` and ``sentiment_model`` (``lexicon-`` + a hash of the lexicon and
negators: editing them re-scores every message). Whether the event's own
``sentiment`` property wins is decided in one place, the dbt model
``int_conversation_sentiment_summarized`` (its ``messages`` step).

Tokens are runs of letters and apostrophes; a token within two tokens after a
negator (not, no, never, don't, ...) counts with the opposite sign. Score =
s / sqrt(s^2 + 15) (VADER's normalisation) of the summed word scores, in
-1..1; 0 without any lexicon word. The lexicon is ``sentiment_lexicon.csv``
(word, score -1..1).

Compared with VADER (``vadersentiment``) on hand-labelled support messages
(``benchmarks/sentiment_messages.jsonl``, ``make bench-sentiment``), the
lexicon agrees with the labels more often: VADER reads "I'd like to close my
account" as positive and misses "this is a joke", so the lexicon stays
(docs/quality.md; the figures: docs/benchmarks.md).
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from functools import lru_cache
from pathlib import Path

import duckdb

from convo_warehouse.lib.classify import grain
from convo_warehouse.lib.warehouse import sql_literal

LEXICON_PATH = Path(__file__).with_name("sentiment_lexicon.csv")
NEGATORS = ("not", "no", "never", "don't", "dont", "doesn't", "doesnt", "didn't", "didnt", "isn't", "isnt",
            "can't", "cant", "cannot", "won't", "wont", "wasn't", "nothing", "nor", "without")
SENTIMENT_TABLE = "classification.message_sentiment"
SOURCE = "lexicon"
MODEL = "lexicon-" + hashlib.sha256(LEXICON_PATH.read_bytes() + repr(NEGATORS).encode()).hexdigest()[:12]


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the table if missing (same columns as the dbt on-run-start macro)."""
    con.execute("create schema if not exists classification")
    con.execute(
        f"""
        create table if not exists {SENTIMENT_TABLE} (
            event_id varchar,
            conversation_id varchar,
            event_at timestamp,
            sentiment double,
            sentiment_source varchar,
            sentiment_model varchar,
            scored_at timestamp
        )
        """
    )
    con.execute(f"alter table {SENTIMENT_TABLE} add column if not exists sentiment_model varchar")


def score_messages(con: duckdb.DuckDBPyConnection, messages_relation: str) -> int:
    """Score the user messages of ``messages_relation`` not yet scored by this model; return how many.

    ``messages_relation`` has ``event_id``, ``conversation_id``, ``event_at``,
    ``role`` and ``content`` (the classifier's message table).
    """
    ensure_table(con)
    con.execute(
        f"""
        create or replace temp table sentiment_todo as
        select messages.event_id, messages.conversation_id, messages.event_at, messages.content,
        from {messages_relation} as messages
        where messages.role = 'user'
            and not exists (
                select 1
                from {SENTIMENT_TABLE} as stored
                where stored.event_id = messages.event_id and stored.sentiment_model = ?
            )
        """,
        [MODEL],
    )
    todo = con.execute("select count(*) from sentiment_todo").fetchone()[0]
    if not todo:
        return 0
    con.execute("begin")
    con.execute(f"delete from {SENTIMENT_TABLE} where event_id in (select event_id from sentiment_todo)")
    con.execute(
        f"""
        insert into {SENTIMENT_TABLE} by name
        select
            sentiment_todo.event_id,
            sentiment_todo.conversation_id,
            sentiment_todo.event_at,
            messages_scored.lexicon_sentiment as sentiment,
            ? as sentiment_source,
            ? as sentiment_model,
            current_timestamp::timestamp as scored_at,
        from sentiment_todo
        inner join ({sentiment_sql('sentiment_todo')}) as messages_scored
            on sentiment_todo.event_id = messages_scored.event_id
        """,
        [SOURCE, MODEL],
    )
    grain.check(con, "message_sentiment", "sentiment_todo", "event_id")
    con.execute("commit")
    return todo


def sentiment_sql(messages_relation: str) -> str:
    """One row per message of ``messages_relation`` (conversation_id, event_id, content) with its lexicon score."""
    negators = ", ".join(sql_literal(word) for word in NEGATORS)
    return f"""
with

messages as (
    select conversation_id, event_id, content from {messages_relation}
),

lexicon as (
    select word, score from read_csv('{LEXICON_PATH}', header = true, columns = {{'word': 'varchar', 'score': 'double'}})
),

messages_tokenised as (
    select
        messages.event_id,
        regexp_extract_all(lower(replace(coalesce(messages.content, ''), '’', '''')), '[a-z'']+') as tokens,
    from messages
),

tokens as (
    select
        messages_tokenised.event_id,
        unnest(messages_tokenised.tokens) as token,
        unnest(range(1, len(messages_tokenised.tokens) + 1)) as position,
    from messages_tokenised
),

tokens_with_negation as (
    select
        tokens.event_id,
        tokens.token,
        coalesce(
            lag(tokens.token, 1) over (partition by tokens.event_id order by tokens.position) in ({negators})
            or lag(tokens.token, 2) over (partition by tokens.event_id order by tokens.position) in ({negators}),
            false
        ) as is_negated,
    from tokens
),

scores_summed as (
    select
        tokens_with_negation.event_id,
        sum(case when tokens_with_negation.is_negated then -lexicon.score else lexicon.score end) as total,
    from tokens_with_negation
    inner join lexicon on tokens_with_negation.token = lexicon.word
    group by tokens_with_negation.event_id
),

messages_scored as (
    select
        messages.conversation_id,
        messages.event_id,
        coalesce(scores_summed.total / sqrt(scores_summed.total * scores_summed.total + 15), 0.0) as lexicon_sentiment,
    from messages
    left join scores_summed on messages.event_id = scores_summed.event_id
)

select * from messages_scored
"""


def score_texts(texts: list[str]) -> list[float]:
    """Lexicon sentiment of plain strings (for tests and ad-hoc use)."""
    con = duckdb.connect()
    try:
        con.execute("create temp table texts (conversation_id varchar, event_id varchar, content varchar)")
        con.executemany("insert into texts values ('c', ?, ?)", [(f"e{i:06d}", text) for i, text in enumerate(texts)])
        rows = con.execute(f"select event_id, lexicon_sentiment from ({sentiment_sql('texts')}) order by event_id").fetchall()
        return [float(score) for _, score in rows]
    finally:
        con.close()


# --- the same score for one message at a time (the collector's live state) -------------

_TOKEN = re.compile(r"[a-z']+")


@lru_cache(maxsize=1)
def _lexicon() -> dict[str, tuple[float, ...]]:
    """word -> its scores (a word listed twice counts twice, as the query's join does)."""
    scores: dict[str, list[float]] = {}
    with open(LEXICON_PATH, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            scores.setdefault(row["word"], []).append(float(row["score"]))
    return {word: tuple(values) for word, values in scores.items()}


def score_text(content: str | None) -> float:
    """The lexicon score of one message, as ``sentiment_sql`` computes it.

    ``tests/live/test_sentiment_python_equals_sql.py`` proves the two equal on every user
    message of the golden sets and the real chats, and on fuzzed text.
    """
    from convo_warehouse.lib.classify.rules import normalise_text

    tokens = _TOKEN.findall(normalise_text(content))
    lexicon = _lexicon()
    total, matched = 0.0, False
    for position, token in enumerate(tokens):
        scores = lexicon.get(token)
        if scores is None:
            continue
        negated = (position >= 1 and tokens[position - 1] in NEGATORS) or (
            position >= 2 and tokens[position - 2] in NEGATORS)
        for score in scores:
            total += -score if negated else score
        matched = True
    if not matched:
        return 0.0
    return total / math.sqrt(total * total + 15)
