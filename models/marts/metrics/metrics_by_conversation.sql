{#- One row per conversation: what it adds to the numerator and denominator
    of every metric of metrics_definitions() (the list metrics_daily is built
    from), with its day, hour and attributes, so a period crossed with any
    filters (channel and agent and environment, an experiment variant) is a
    sum over rows: sum(<metric>__numerator) / sum(<metric>__denominator). The
    dashboard, `convo-warehouse` and the read API read it from the snapshot.
    Replaced day by day (incremental keyed by metric_date): the days of
    the conversations in scope, since a conversation's quality_score
    compares it with its agent's other conversations of the same day
    (int_conversation_quality_scored), so a change to one conversation can
    change the others of its day. The snapshot publishes the days the run
    rewrote. -#}
{{ config(
    unique_key='conversation_id',
    scope_key='metric_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('metric_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations as (
    select
        conversation_id,
        metric_date,
        metric_hour,
        channel,
        agent_id,
        device,
        source,
        language,
        environment,
        initialized,
        started,
        engaged,
        was_completed,
        was_abandoned,
        had_handoff,
        converted,
        user_turns,
        fallback_count,
        duration_seconds,
        first_response_ms,
        satisfaction_score,
        feedback_score,
        rephrase_count,
        sentiment_sum,
        sentiment_count,
        sentiment_start,
        sentiment_end,
        quality_score,
        sales_responded_in_order,
        sales_qualified_in_order,
        sales_booked_in_order,
        sales_attended_in_order,
        sales_converted_in_order,
        semantic_rephrase_count,
        is_frustrated,
        conversation_cost_usd,
        has_unpriced_model_calls
    from {{ ref('int_conversation_measures') }}
    {%- if is_incremental() %}
    where metric_date in {{ dates_listed(scope_days, 'event_date') }}
    {%- endif %}
),

conversation_contributions as (
    select
        conversations.conversation_id,
        conversations.metric_date,
        conversations.metric_hour,
        coalesce(conversations.channel, 'unknown') as channel,
        coalesce(conversations.agent_id, 'unknown') as agent_id,
        coalesce(conversations.device, 'unknown') as device,
        coalesce(conversations.source, 'unknown') as source,  -- noqa: RF04
        coalesce(conversations.language, 'unknown') as language,  -- noqa: RF04
        coalesce(conversations.environment, 'unknown') as environment,
        {{ is_development_traffic('conversations.environment') }} as is_development,
        {{ metrics_contribution_columns() }}
    from conversations
)

select * from conversation_contributions
