-- One row per scored user message: the newest offline-model score wins
-- (a re-score with a newer model supersedes the older row).

with

message_sentiment as (
    select
        event_id,
        conversation_id,
        sentiment,
        sentiment_source,
        sentiment_model,
        scored_at
    from {{ source('classification', 'message_sentiment') }}
    where
        event_id is not null
        and sentiment is not null
),

sentiment_ranked as (
    select
        message_sentiment.*,
        row_number() over (
            partition by message_sentiment.event_id
            order by
                message_sentiment.scored_at desc nulls last,
                message_sentiment.sentiment_model asc
        ) as recency_rank
    from message_sentiment
),

sentiment_deduplicated as (
    select
        cast(sentiment_ranked.event_id as {{ dbt.type_string() }}) as event_id,
        cast(sentiment_ranked.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(sentiment_ranked.sentiment as {{ type_double() }}) as model_sentiment,
        cast(sentiment_ranked.sentiment_source as {{ dbt.type_string() }}) as model_source,
        cast(sentiment_ranked.sentiment_model as {{ dbt.type_string() }}) as sentiment_model,
        cast(sentiment_ranked.scored_at as {{ dbt.type_timestamp() }}) as scored_at
    from sentiment_ranked
    where sentiment_ranked.recency_rank = 1
)

select * from sentiment_deduplicated
