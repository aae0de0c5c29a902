-- One row per embedded user message, as the classifier wrote it. The
-- classifier replaces a message's row when it embeds it again (every message
-- when the configured model changes), so the source holds one row per
-- event_id (its unique test checks it) and nothing is deduplicated here: a
-- window over the whole table would sit between a run's scope filter and
-- the scan.

with

message_embeddings as (
    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(content_hash as {{ dbt.type_string() }}) as content_hash,
        embedding,
        cast(embedding_model as {{ dbt.type_string() }}) as embedding_model,
        cast(embedded_at as {{ dbt.type_timestamp() }}) as embedded_at
    from {{ source('classification', 'message_embeddings') }}
    where
        event_id is not null
        and embedding is not null
)

select * from message_embeddings
