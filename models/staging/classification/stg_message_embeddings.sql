-- One row per embedded user message: the newest embedding wins (the
-- classifier embeds every message again when the configured model changes).

with

message_embeddings as (
    select
        event_id,
        conversation_id,
        content_hash,
        embedding,
        embedding_model,
        embedded_at
    from {{ source('classification', 'message_embeddings') }}
    where
        event_id is not null
        and embedding is not null
),

embeddings_ranked as (
    select
        message_embeddings.*,
        -- partitioned by conversation too (an event belongs to one): a reader's filter on
        -- conversation_id then reaches the table scan instead of ranking every embedding
        row_number() over (
            partition by message_embeddings.conversation_id, message_embeddings.event_id
            order by
                message_embeddings.embedded_at desc nulls last,
                message_embeddings.embedding_model asc
        ) as recency_rank
    from message_embeddings
),

embeddings_deduplicated as (
    select
        cast(embeddings_ranked.event_id as {{ dbt.type_string() }}) as event_id,
        cast(embeddings_ranked.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(embeddings_ranked.content_hash as {{ dbt.type_string() }}) as content_hash,
        embeddings_ranked.embedding,
        cast(embeddings_ranked.embedding_model as {{ dbt.type_string() }}) as embedding_model,
        cast(embeddings_ranked.embedded_at as {{ dbt.type_timestamp() }}) as embedded_at
    from embeddings_ranked
    where embeddings_ranked.recency_rank = 1
)

select * from embeddings_deduplicated
