"""Where results go: ``classification.stage_classifications`` and ``classification.llm_calls``.

The results table is also the cache: a conversation whose stored rows carry its
current transcript hash and the current rules version (rules) or prompt version
and model (llm) is not classified again.

Each reached stage's row names the message that shows it (``message_event_id``,
contract v1.3): the classifier's message position (``seq`` in the prepared
messages, ``transcripts.MESSAGES_TABLE``) mapped to that message's event_id.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import duckdb
import pyarrow as pa

from convo_warehouse.lib.classify import grain
from convo_warehouse.lib.classify.llm import CallRecord, LLMResult
from convo_warehouse.lib.classify.stages import FUNNEL_NAME, STAGES
from convo_warehouse.lib.classify.transcripts import MESSAGES_TABLE

RESULTS = "classification.stage_classifications"
CALLS = "classification.llm_calls"
LLM_CONFIDENCE = 0.9

#: The YAML's data types as DuckDB types (the macro maps them to dbt.type_* and the same double).
DUCKDB_TYPES = {"string": "VARCHAR", "boolean": "BOOLEAN", "double": "DOUBLE", "timestamp": "TIMESTAMP"}


@cache
def results_columns() -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type) of ``classification.stage_classifications``, in order, from the source YAML."""
    table = grain.definition("stage_classifications")
    columns = []
    for column in table["columns"]:
        data_type = column.get("data_type")
        if data_type not in DUCKDB_TYPES:
            raise ValueError(
                f"{grain.SOURCES_DEFINITION}: column {column['name']} of stage_classifications has data_type "
                f"{data_type!r}; use one of {', '.join(DUCKDB_TYPES)}"
            )
        columns.append((column["name"], DUCKDB_TYPES[data_type]))
    return tuple(columns)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and tables if missing; bring an older results table to the definition.

    An existing results table gets the columns it lacks and the defined type
    where it differs (tables created while the DDL had ``confidence`` as a
    4-byte float become double).
    """
    con.execute("create schema if not exists classification")
    columns = results_columns()
    con.execute(f"create table if not exists {RESULTS} ({', '.join(f'{name} {kind}' for name, kind in columns)})")
    existing = {
        name: kind
        for name, kind in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'classification' and table_name = 'stage_classifications'"
        ).fetchall()
    }
    for name, kind in columns:
        if name not in existing:
            con.execute(f"alter table {RESULTS} add column {name} {kind}")
        elif existing[name] != kind:
            con.execute(f"alter table {RESULTS} alter column {name} set data type {kind}")
    con.execute(
        f"""
        create table if not exists {CALLS} (
            conversation_id varchar,
            transcript_hash varchar,
            model varchar,
            prompt_version varchar,
            attempt integer,
            status varchar,
            http_status integer,
            prompt_tokens integer,
            completion_tokens integer,
            cost_usd double,
            latency_ms double,
            error varchar,
            called_at timestamp
        )
        """
    )


def replace_with_rules(
    con: duckdb.DuckDBPyConnection,
    ids_table: str,
    rules_result_table: str,
    transcripts_table: str,
    rules_version: str,
    fallback_reason: str | None = None,
    messages_table: str = MESSAGES_TABLE,
) -> int:
    """Replace the rows of the conversations in ``ids_table`` with the rules result (its
    ``reached_seq``, a position in ``messages_table``, becomes the message's event_id)."""
    con.execute(
        f"delete from {RESULTS} where funnel_name = '{FUNNEL_NAME}' "
        f"and conversation_id in (select conversation_id from {ids_table})"
    )
    con.execute(
        f"""
        insert into {RESULTS}
        select
            {rules_result_table}.conversation_id,
            '{FUNNEL_NAME}' as funnel_name,
            {rules_result_table}.stage,
            {rules_result_table}.reached,
            {rules_result_table}.confidence,
            'rules' as classifier,
            'rules' as model,
            ? as prompt_version,
            {transcripts_table}.transcript_hash,
            current_timestamp::timestamp as classified_at,
            ? as fallback_reason,
            named_messages.event_id as message_event_id,
        from {rules_result_table}
        inner join {ids_table}
            on {rules_result_table}.conversation_id = {ids_table}.conversation_id
        inner join {transcripts_table}
            on {rules_result_table}.conversation_id = {transcripts_table}.conversation_id
        left join {messages_table} as named_messages
            on {rules_result_table}.conversation_id = named_messages.conversation_id
            and {rules_result_table}.reached_seq = named_messages.seq
        -- a conversation's stage rows side by side in the file: its id and its transcript_hash
        -- (an MD5 on each of them) then take one dictionary entry, not one per stage row
        order by {rules_result_table}.conversation_id, {rules_result_table}.stage
        """,
        [rules_version, fallback_reason],
    )
    grain.check(con, "stage_classifications", ids_table, "conversation_id")
    return con.execute(f"select count(*) from {ids_table}").fetchone()[0]


def replace_with_llm(
    con: duckdb.DuckDBPyConnection,
    results: Sequence[LLMResult],
    model: str,
    prompt_version: str,
    messages_table: str = MESSAGES_TABLE,
) -> None:
    """Replace the rows of successfully classified conversations with the LLM's labels (one bulk
    insert); the message number it named for a stage (1 = the first, as ``seq`` in
    ``messages_table``) becomes that message's event_id."""
    done = [result for result in results if result.labels is not None]
    if not done:
        return
    llm_rows = pa.table(
        {
            "conversation_id": [result.conversation_id for result in done for _ in STAGES],
            "stage": [stage for _ in done for stage in STAGES],
            "reached": [result.labels[stage] for result in done for stage in STAGES],
            "transcript_hash": [result.transcript_hash for result in done for _ in STAGES],
            "message_seq": pa.array(
                [getattr(result.labels, "messages", {}).get(stage) for result in done for stage in STAGES],
                pa.int64(),
            ),
        }
    )
    con.register("classify_llm_rows", llm_rows)
    try:
        con.execute(
            f"delete from {RESULTS} where funnel_name = '{FUNNEL_NAME}' "
            "and conversation_id in (select conversation_id from classify_llm_rows)"
        )
        con.execute(
            f"""
            insert into {RESULTS}
            select
                classify_llm_rows.conversation_id,
                '{FUNNEL_NAME}' as funnel_name,
                classify_llm_rows.stage,
                classify_llm_rows.reached,
                {LLM_CONFIDENCE} as confidence,
                'llm' as classifier,
                ? as model,
                ? as prompt_version,
                classify_llm_rows.transcript_hash,
                current_timestamp::timestamp as classified_at,
                null as fallback_reason,
                named_messages.event_id as message_event_id,
            from classify_llm_rows
            left join {messages_table} as named_messages
                on classify_llm_rows.conversation_id = named_messages.conversation_id
                and classify_llm_rows.message_seq = named_messages.seq
            order by classify_llm_rows.conversation_id, classify_llm_rows.stage  -- as the rules' rows
            """,
            [model, prompt_version],
        )
        grain.check(con, "stage_classifications", "classify_llm_rows", "conversation_id")
    finally:
        con.unregister("classify_llm_rows")


CALL_FIELDS = (
    "conversation_id", "transcript_hash", "model", "prompt_version", "attempt", "status", "http_status",
    "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "error", "called_at",
)


def record_calls(con: duckdb.DuckDBPyConnection, calls: Sequence[CallRecord]) -> None:
    """Append one row per HTTP attempt to ``classification.llm_calls`` (one bulk insert)."""
    if not calls:
        return
    table = pa.table(
        {name: [getattr(call, name) for call in calls] for name in CALL_FIELDS},
        schema=pa.schema(
            [
                ("conversation_id", pa.string()), ("transcript_hash", pa.string()), ("model", pa.string()),
                ("prompt_version", pa.string()), ("attempt", pa.int32()), ("status", pa.string()),
                ("http_status", pa.int32()), ("prompt_tokens", pa.int32()), ("completion_tokens", pa.int32()),
                ("cost_usd", pa.float64()), ("latency_ms", pa.float64()), ("error", pa.string()),
                ("called_at", pa.timestamp("us")),
            ]
        ),
    )
    con.register("classify_call_rows", table)
    try:
        con.execute(f"insert into {CALLS} select {', '.join(CALL_FIELDS)} from classify_call_rows")
    finally:
        con.unregister("classify_call_rows")
