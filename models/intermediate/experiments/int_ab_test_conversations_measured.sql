{#- One row per test x exposed conversation: what the experiment marts
    measure of it, and its conversation_date, the day whose partial
    (int_ab_test_variant_days_counted) it counts in. Replaced day by day:
    quality_score compares a conversation with its agent's other
    conversations of the same day, so a run recomputes every day holding a
    conversation in scope (new events, the clock, the classifier). -#}
{{ config(
    unique_key=['test_name', 'conversation_id'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations as (
    select
        conversation_id,
        conversation_date,
        channel,
        was_completed,
        had_handoff,
        satisfaction_score,
        first_response_ms
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

exposures as (
    select
        test_name,
        conversation_id,
        {{ conversation_date_on_spark() }}
        variant,
        first_exposed_at,
        variant_count,
        assignment_ok
    from {{ ref('int_ab_test_exposures_checked') }}
    where conversation_id in (select conversations.conversation_id from conversations)
),

conversion_events as (
    select
        conversation_id,
        event_at
    from {{ ref('stg_events') }}
    where
        event_type = 'conversion'
        and is_known_type
        and conversation_id in (select exposures.conversation_id from exposures)
),

quality as (
    select
        conversation_id,
        quality_score
    from {{ ref('int_conversation_quality_scored') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

-- a conversion at or after the first exposure exists iff the last one is
last_conversions as (
    select
        conversion_events.conversation_id,
        max(conversion_events.event_at) as last_converted_at
    from conversion_events
    group by conversion_events.conversation_id
),

-- an exposure is a known event of its conversation, so the conversation
-- always has its summary row (the inner join loses nothing)
exposures_measured as (
    select
        exposures.test_name,
        exposures.conversation_id,
        conversations.conversation_date,
        exposures.variant,
        exposures.first_exposed_at,
        exposures.variant_count,
        exposures.variant_count > 1 as is_contaminated,
        exposures.assignment_ok,
        coalesce(conversations.channel, 'unknown') as channel,
        coalesce(
            last_conversions.last_converted_at >= exposures.first_exposed_at,
            false
        ) as converted_after_exposure,
        conversations.was_completed,
        conversations.had_handoff,
        conversations.satisfaction_score,
        conversations.first_response_ms,
        quality.quality_score
    from exposures
    inner join conversations
        on {{ same_conversation('conversations', 'exposures', 'conversations.conversation_date') }}
    left join last_conversions
        on exposures.conversation_id = last_conversions.conversation_id
    left join quality
        on exposures.conversation_id = quality.conversation_id
)

select * from exposures_measured
