-- One row per scored user message, as the classifier wrote it. The
-- classifier replaces a message's row when it scores it again (a newer
-- model), so the source holds one row per event_id (its unique test checks
-- it) and nothing is deduplicated here: a window over the whole table would
-- sit between a run's scope filter and the scan.

with

message_sentiment as (
    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(sentiment as {{ type_double() }}) as model_sentiment,
        cast(sentiment_source as {{ dbt.type_string() }}) as model_source,
        cast(sentiment_model as {{ dbt.type_string() }}) as sentiment_model,
        cast(scored_at as {{ dbt.type_timestamp() }}) as scored_at
    from {{ source('classification', 'message_sentiment') }}
    where
        event_id is not null
        and sentiment is not null
)

select * from message_sentiment
