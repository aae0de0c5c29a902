{#- One row per user_message (known event types): its sentiment -1..1 and
    where it came from. The event's own `sentiment` property wins when it is a
    number in -1..1 (source `event`); otherwise the offline lexicon's score
    written by the classification asset (source `lexicon`); null
    (source null) until the model has scored the message. Incremental: a run
    recomputes the messages of the conversations with new events or new
    scores (conversations_to_refresh_cte). -#}

with

user_messages as (
    select
        conversation_id,
        event_id,
        event_at,
        sentiment
    from {{ ref('stg_events') }}
    where
        is_known_type
        and event_type = 'user_message'
        and conversation_id is not null
        and {{ touched('conversation_id') }}
),

model_scores as (
    select
        event_id,
        model_sentiment,
        model_source
    from {{ ref('stg_message_sentiment') }}
),

messages_resolved as (
    select
        user_messages.conversation_id,
        user_messages.event_id,
        user_messages.event_at,
        case
            when user_messages.sentiment between -1 and 1 then user_messages.sentiment
            else model_scores.model_sentiment
        end as sentiment,
        case
            when user_messages.sentiment between -1 and 1 then 'event'
            when model_scores.model_sentiment is not null then model_scores.model_source
        end as sentiment_source
    from user_messages
    left join model_scores
        on user_messages.event_id = model_scores.event_id
)

select * from messages_resolved
