{#- One row per conversation with at least one user_message. Over its user
    messages that have a sentiment (resolved below), numbered
    by time then event_id, n of them and k = max(1, floor(n / 3)):
    sentiment_start = mean of the first k, sentiment_end = mean of the last k
    (n = 1: the one message both; n = 2: the first and the second),
    sentiment_trend = sentiment_end - sentiment_start (contract v1.3); all
    three null when no message is scored. sentiment_direction, the category:
    end - start (rounded to 6 decimals) against the band
    var('sentiment_trend_band'): improving (>= band), worsening (<= -band),
    else stable; null below var('sentiment_min_user_messages') scored
    messages (a change between one or two messages says little).
    Incremental: a run recomputes the conversations with new events or new
    scores (scope_conversations). -#}
{{ config(
    unique_key='conversation_id',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set band = var('sentiment_trend_band') %}
{%- set minimum = var('sentiment_min_user_messages') %}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

user_messages as (
    select
        conversation_id,
        event_id,
        event_at,
        sentiment
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        is_known_type
        and event_type = 'user_message'
        and conversation_id is not null
),

model_scores as (
    select
        event_id,
        model_sentiment,
        model_source
    from {{ ref('stg_message_sentiment') }}
    {%- if is_incremental() %}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

-- a user message's sentiment -1..1: the event's own `sentiment` property
-- when it is a number in -1..1 (source `event`), else the offline model's
-- score the classifier wrote (its source), else null until it is scored
messages as (
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
),

messages_numbered as (
    select
        messages.conversation_id,
        messages.sentiment,
        row_number() over (
            partition by messages.conversation_id
            order by messages.event_at, messages.event_id
        ) as scored_message_number,
        count(*) over (partition by messages.conversation_id) as scored_messages
    from messages
    where messages.sentiment is not null
),

-- k = max(1, floor(n / 3)) messages at each end
messages_thirded as (
    select
        messages_numbered.*,
        greatest(1, floor(messages_numbered.scored_messages / 3)) as third_size
    from messages_numbered
),

thirds_summed as (
    select
        messages_thirded.conversation_id,
        max(messages_thirded.scored_messages) as scored_messages,
        {{ exact_sum('messages_thirded.sentiment') }} as sentiment_sum,
        {{ exact_avg(
            'case when messages_thirded.scored_message_number <= messages_thirded.third_size'
            ~ ' then messages_thirded.sentiment end'
        ) }} as first_third_mean,
        {{ exact_avg(
            'case when messages_thirded.scored_message_number'
            ~ ' > messages_thirded.scored_messages - messages_thirded.third_size'
            ~ ' then messages_thirded.sentiment end'
        ) }} as last_third_mean
    from messages_thirded
    group by messages_thirded.conversation_id
),

conversations as (
    select
        messages.conversation_id,
        count(*) as user_messages
    from messages
    group by messages.conversation_id
),

sentiment_summarized as (
    select
        conversations.conversation_id,
        conversations.user_messages,
        coalesce(thirds_summed.scored_messages, 0) as scored_messages,
        coalesce(thirds_summed.sentiment_sum, 0) as sentiment_sum,
        thirds_summed.sentiment_sum / thirds_summed.scored_messages as avg_sentiment,
        thirds_summed.first_third_mean as sentiment_start,
        thirds_summed.last_third_mean as sentiment_end,
        thirds_summed.last_third_mean - thirds_summed.first_third_mean as sentiment_trend,
        case
            when coalesce(thirds_summed.scored_messages, 0) < {{ minimum }} then null
            when round(thirds_summed.last_third_mean - thirds_summed.first_third_mean, 6) >= {{ band }}
                then 'improving'
            when round(thirds_summed.last_third_mean - thirds_summed.first_third_mean, 6) <= -{{ band }}
                then 'worsening'
            else 'stable'
        end as sentiment_direction
    from conversations
    left join thirds_summed
        on conversations.conversation_id = thirds_summed.conversation_id
)

{{ select_with_conversation_date('sentiment_summarized') }}
