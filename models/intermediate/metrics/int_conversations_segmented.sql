{#- A view: it is only read filtered by day (the incremental metrics models
    push their day filter into it), so storing it would cost a full write of
    conversations x segments on every run for nothing. -#}
{{ config(materialized='view') }}

{%- set attribute_segments = ['channel', 'agent_id', 'device', 'source', 'language'] %}

with

conversations as (
    select
        fct_conversations.conversation_id,
        fct_conversations.conversation_date,
        fct_conversations.first_event_at,
        fct_conversations.channel,
        fct_conversations.agent_id,
        fct_conversations.device,
        fct_conversations.source,
        fct_conversations.language,
        fct_conversations.initialized,
        fct_conversations.started,
        fct_conversations.engaged,
        fct_conversations.was_completed,
        fct_conversations.was_abandoned,
        fct_conversations.had_handoff,
        fct_conversations.converted,
        fct_conversations.user_turns,
        fct_conversations.fallback_count,
        fct_conversations.duration_seconds,
        fct_conversations.first_response_ms,
        fct_conversations.satisfaction_score,
        fct_conversations.feedback_score,
        fct_conversations.rephrase_count
    from {{ ref('fct_conversations') }} as fct_conversations
),

sentiment_per_conversation as (
    select
        int_conversation_sentiment_summarized.conversation_id,
        int_conversation_sentiment_summarized.sentiment_sum,
        int_conversation_sentiment_summarized.scored_messages as sentiment_count
    from {{ ref('int_conversation_sentiment_summarized') }} as int_conversation_sentiment_summarized
),

exposures as (
    select
        ab_test_exposures.test_name,
        ab_test_exposures.conversation_id,
        ab_test_exposures.variant
    from {{ ref('ab_test_exposures') }} as ab_test_exposures
    -- variant_count > 1: the conversation saw several variants (contaminated)
    where coalesce(ab_test_exposures.variant_count, 0) <= 1
),

conversation_segments as (
    select
        conversations.conversation_id,
        'all' as segment_type,
        'all' as segment_value
    from conversations
    {% for attribute in attribute_segments %}
        union all
        select
            conversations.conversation_id,
            '{{ attribute }}' as segment_type,
            coalesce(cast(conversations.{{ attribute }} as {{ dbt.type_string() }}), 'unknown') as segment_value
        from conversations
    {% endfor %}
    union all
    select
        exposures.conversation_id,
        {{ dbt.concat(["'experiment:'", "coalesce(exposures.test_name, 'unknown')"]) }} as segment_type,
        coalesce(cast(exposures.variant as {{ dbt.type_string() }}), 'unknown') as segment_value
    from exposures
),

conversations_segmented as (
    select
        conversations.conversation_id,
        conversations.conversation_date as metric_date,
        {{ dbt.date_trunc('hour', 'conversations.first_event_at') }} as metric_hour,
        conversation_segments.segment_type,
        conversation_segments.segment_value,
        conversations.initialized,
        conversations.started,
        conversations.engaged,
        conversations.was_completed,
        conversations.was_abandoned,
        conversations.had_handoff,
        conversations.converted,
        conversations.user_turns,
        conversations.fallback_count,
        conversations.duration_seconds,
        conversations.first_response_ms,
        conversations.satisfaction_score,
        conversations.feedback_score,
        conversations.rephrase_count,
        coalesce(sentiment_per_conversation.sentiment_sum, 0) as sentiment_sum,
        coalesce(sentiment_per_conversation.sentiment_count, 0) as sentiment_count
    from conversation_segments
    inner join conversations
        on conversation_segments.conversation_id = conversations.conversation_id
    left join sentiment_per_conversation
        on conversations.conversation_id = sentiment_per_conversation.conversation_id
)

select * from conversations_segmented
