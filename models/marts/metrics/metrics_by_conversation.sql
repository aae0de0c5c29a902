{#- One row per conversation: what it adds to the numerator and denominator
    of every metric of metrics_definitions() (the list metrics_daily is built
    from), with its day, hour and attributes, so a period crossed with any
    filters (channel and agent and environment, an experiment variant) is a
    sum over rows: sum(<metric>__numerator) / sum(<metric>__denominator). The
    dashboard, `convo-warehouse` and the read API read it from the snapshot.
    A view: the snapshot stores it as a table when a run publishes, and
    nothing in the pipeline reads it, so a table here would cost a full write
    of every conversation on every run for nothing. -#}

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
        sales_converted_in_order
    from {{ ref('int_conversations_segmented') }}
    where segment_type = 'all'
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
