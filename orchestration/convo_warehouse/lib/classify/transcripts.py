"""Transcripts from the warehouse: message rows and a content hash per conversation.

Messages are ``staging.stg_events`` rows of type ``user_message`` /
``agent_message`` ordered by ``event_at, event_id``; only started conversations
(per ``marts.fct_conversations``, when it exists) are classified. The hash of a
transcript (roles and contents in order) is the cache key, with the prompt or
rules version and the model.

A transcript can only have changed if its conversation's row of
``scope.scope_conversation_lifecycle`` was recomputed since the transcripts
were last prepared for the same settings: a run recomputes the conversations
with new events, and a change to how staging reads the history (an alias
added to a seed) rebuilds the lifecycle whole (docs/incremental.md), which
recomputes them all. ``classification.transcript_preparations`` keeps the
newest ``recomputed_at`` each preparation covered
(``changed_since_last_prepared``).
"""

from __future__ import annotations

import duckdb

from convo_warehouse.lib.warehouse import table_exists

MESSAGES_TABLE = "classify_messages"
TRANSCRIPTS_TABLE = "classify_transcripts"
PREPARED_TABLE = "classification.transcript_preparations"
LIFECYCLE_TABLE = "scope.scope_conversation_lifecycle"


def lifecycle_through(con: duckdb.DuckDBPyConnection):
    """The newest ``recomputed_at`` of the conversations' lifecycle (None: no lifecycle yet)."""
    if not table_exists(con, LIFECYCLE_TABLE):
        return None
    return con.execute(f"select max(recomputed_at) from {LIFECYCLE_TABLE}").fetchone()[0]


def changed_since_last_prepared(con: duckdb.DuckDBPyConnection, through, settings: str) -> str | None:
    """A query of the conversations whose transcript may have changed since the last
    ``record_prepared`` with the same ``settings``, or None: any may have (nothing
    recorded, other settings, no lifecycle). ``through``: ``lifecycle_through`` now."""
    if through is None or not table_exists(con, PREPARED_TABLE):
        return None
    previous = con.execute(
        f"select lifecycle_through, settings from {PREPARED_TABLE} order by prepared_at desc limit 1"
    ).fetchone()
    if previous is None or previous[1] != settings or previous[0] is None:
        return None
    return (
        f"select lifecycle.conversation_id from {LIFECYCLE_TABLE} as lifecycle "
        f"where lifecycle.recomputed_at > '{previous[0]}'::timestamp"
    )


def record_prepared(con: duckdb.DuckDBPyConnection, through, settings: str) -> None:
    """Record what the transcripts were prepared from (``lifecycle_through`` when they were),
    once everything they fed is stored."""
    if through is None:
        return
    con.execute(
        f"create table if not exists {PREPARED_TABLE} "
        "(prepared_at timestamp, lifecycle_through timestamp, settings varchar)"
    )
    con.execute(f"insert into {PREPARED_TABLE} values (current_timestamp::timestamp, ?, ?)", [through, settings])


def prepare_transcripts(con: duckdb.DuckDBPyConnection, conversations: str | None = None) -> int:
    """Build temp tables ``classify_messages`` and ``classify_transcripts``; return the conversation count.

    ``conversations``: a relation of the ``conversation_id``s to prepare (default:
    every conversation with a message; a message is an event that starts a
    conversation, so they are the started ones with a transcript).
    """
    if not table_exists(con, "staging.stg_events"):
        raise RuntimeError("staging.stg_events does not exist: build the dbt models first")
    started_filter = ""
    if conversations is not None:
        started_filter += f"""
            and stg_events.conversation_id in (select wanted.conversation_id from {conversations} as wanted)"""
    has_sentiment = con.execute(
        "select count(*) from information_schema.columns "
        "where table_schema = 'staging' and table_name = 'stg_events' and column_name = 'sentiment'"
    ).fetchone()[0]
    event_sentiment = "stg_events.sentiment" if has_sentiment else "null::double"
    con.execute(
        f"""
        create or replace temp table {MESSAGES_TABLE} as
        with message_events as (
            select
                stg_events.conversation_id,
                stg_events.event_id,
                stg_events.event_at,
                stg_events.event_type,
                stg_events.content,
                {event_sentiment} as event_sentiment,
            from staging.stg_events
            where stg_events.event_type in ('user_message', 'agent_message')
                and stg_events.conversation_id is not null{started_filter}
        ),

        messages_ordered as (
            select
                message_events.conversation_id,
                row_number() over (
                    partition by message_events.conversation_id
                    order by message_events.event_at, message_events.event_id
                ) as seq,
                case message_events.event_type when 'user_message' then 'user' else 'agent' end as role,
                coalesce(message_events.content, '') as content,
                message_events.event_id,
                message_events.event_at,
                message_events.event_sentiment,
            from message_events
        )

        select * from messages_ordered
        """
    )
    con.execute(
        f"""
        create or replace temp table {TRANSCRIPTS_TABLE} as
        select
            {MESSAGES_TABLE}.conversation_id,
            -- the messages in order, `role:content` joined by chr(30): a sorted
            -- list rather than an ordered string_agg (same string, same hash,
            -- about half the time on 800k conversations)
            md5(array_to_string(
                list_transform(
                    list_sort(list(struct_pack(
                        seq := {MESSAGES_TABLE}.seq,
                        line := {MESSAGES_TABLE}.role || ':' || {MESSAGES_TABLE}.content
                    ))),
                    message -> message.line
                ),
                chr(30)
            )) as transcript_hash,
            count(*) as message_count,
        from {MESSAGES_TABLE}
        group by {MESSAGES_TABLE}.conversation_id
        """
    )
    return con.execute(f"select count(*) from {TRANSCRIPTS_TABLE}").fetchone()[0]


def fetch_transcripts(
    con: duckdb.DuckDBPyConnection, ids_table: str
) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(conversation_id, transcript_hash, [(role, content), ...]) for the ids in ``ids_table``."""
    rows = con.execute(
        f"""
        select
            {MESSAGES_TABLE}.conversation_id,
            any_value({TRANSCRIPTS_TABLE}.transcript_hash) as transcript_hash,
            list({MESSAGES_TABLE}.role order by {MESSAGES_TABLE}.seq) as roles,
            list({MESSAGES_TABLE}.content order by {MESSAGES_TABLE}.seq) as contents,
        from {MESSAGES_TABLE}
        inner join {ids_table}
            on {MESSAGES_TABLE}.conversation_id = {ids_table}.conversation_id
        inner join {TRANSCRIPTS_TABLE}
            on {MESSAGES_TABLE}.conversation_id = {TRANSCRIPTS_TABLE}.conversation_id
        group by {MESSAGES_TABLE}.conversation_id
        order by {MESSAGES_TABLE}.conversation_id
        """
    ).fetchall()
    return [(cid, digest, list(zip(roles, contents))) for cid, digest, roles, contents in rows]
