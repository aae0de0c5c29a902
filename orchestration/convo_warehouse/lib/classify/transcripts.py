"""Transcripts from the warehouse: message rows and a content hash per conversation.

Messages are ``staging.stg_events`` rows of type ``user_message`` /
``agent_message`` ordered by ``event_at, event_id``; only started conversations
(per ``marts.fct_conversations``, when it exists) are classified. The hash of a
transcript (roles and contents in order) is the cache key, with the prompt or
rules version and the model.

Staging only appends events (a new load's rows, ``load_id`` above every staged
one) until the way it reads the history changes (an alias added: its build
fingerprint in ``audit.incremental_builds`` changes and every event is mapped
again). So a transcript can only have changed if its conversation has
events of a load staged since the previous preparation, recorded in
``classification.transcripts_prepared`` with that fingerprint and the caller's
settings (``changed_since_last_prepared``).
"""

from __future__ import annotations

import duckdb

from convo_warehouse.lib.warehouse import STAGED_EVENTS_MODEL, table_exists

MESSAGES_TABLE = "classify_messages"
TRANSCRIPTS_TABLE = "classify_transcripts"
PREPARED_TABLE = "classification.transcripts_prepared"


def staged_history(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """(newest staged ``load_id``, the fingerprint of how staging reads the history), or None when unknown.

    The newest load run is the one the staged events' latest build recorded
    parsing through (``loaded_through_load_id`` of ``STAGED_EVENTS_MODEL``'s
    row, as ``history_position()`` in the macros reads it), not a scan of every
    staged event through the ``stg_events`` view, which grows with the
    history. Every load run up to it was parsed by then, and a
    staged row of those runs can change only when staging reads the history
    anew, which changes the fingerprint. A warehouse whose build recorded
    none is scanned.
    """
    if not table_exists(con, "audit.incremental_builds") or not table_exists(con, "staging.stg_events"):
        return None
    fingerprint = _latest_build(con, "stg_events", "build_fingerprint")
    if fingerprint is None:
        return None
    loaded_through = _latest_build(con, STAGED_EVENTS_MODEL, "loaded_through_load_id")
    if loaded_through is None:
        loaded_through = con.execute("select coalesce(max(load_id), 0) from staging.stg_events").fetchone()[0]
    return loaded_through, fingerprint


def _latest_build(con: duckdb.DuckDBPyConnection, model: str, column: str):
    """``column`` of the newest row ``audit.incremental_builds`` holds for ``model`` (None: no row, or null)."""
    row = con.execute(
        f"select {column} from audit.incremental_builds where model_name = ? order by recorded_at desc limit 1",
        [model],
    ).fetchone()
    return None if row is None else row[0]


def changed_since_last_prepared(
    con: duckdb.DuckDBPyConnection, history: tuple[int, str] | None, settings: str
) -> str | None:
    """A query of the conversations whose transcript may have changed since the last
    ``record_prepared`` with the same ``settings``, or None: any may have (nothing
    recorded, other settings, or staging read the history anew). ``history``:
    ``staged_history`` now."""
    if history is None or not table_exists(con, "classification.transcripts_prepared"):
        return None
    previous = con.execute(
        f"select staged_through_load_id, staging_fingerprint, settings from {PREPARED_TABLE} "
        "order by prepared_at desc limit 1"
    ).fetchone()
    if previous is None or (previous[1], previous[2]) != (history[1], settings):
        return None
    return (
        "select distinct stg_events.conversation_id from staging.stg_events "
        f"where stg_events.load_id > {int(previous[0])}"
    )


def record_prepared(con: duckdb.DuckDBPyConnection, history: tuple[int, str] | None, settings: str) -> None:
    """Record what the transcripts were prepared from (``staged_history`` when they were), once
    everything they fed is stored."""
    if history is None:
        return
    con.execute(
        f"create table if not exists {PREPARED_TABLE} "
        "(prepared_at timestamp, staged_through_load_id bigint, staging_fingerprint varchar, settings varchar)"
    )
    con.execute(
        f"insert into {PREPARED_TABLE} values (current_timestamp::timestamp, ?, ?, ?)", [*history, settings]
    )


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
