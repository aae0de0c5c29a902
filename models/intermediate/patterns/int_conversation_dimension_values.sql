{{ config(
    unique_key=['conversation_id', 'dimension', 'dimension_value'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- One row per conversation x dimension x value seen in its events:
-- fallback_topic (fallback_triggered.topic), tool (tool_called.tool_name),
-- handoff_reason (handoff_requested.reason), model (agent_message.model),
-- flow (flow_started/_completed/_abandoned.flow_name), button
-- (button_clicked.button), page (page_url, any event), intent
-- (user_message.intent). A missing value is `unknown` (the event still
-- counts). Incremental, keyed by conversation, dimension and value: a run
-- recomputes every row of the conversations with newly loaded events
-- (scope_conversations). New events only add to a conversation's
-- (dimension, value) pairs, so replacing the recomputed keys replaces every
-- row that changed; a re-mapped history rebuilds every row.

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

events as (
    select
        conversation_id,
        event_type,
        topic,
        tool_name,
        reason,
        model,
        latency_ms,
        flow_name,
        button,
        page_url,
        intent
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        is_known_type
),

dimension_events as (
    select
        events.conversation_id,
        case
            when events.event_type = 'fallback_triggered' then 'fallback_topic'
            when events.event_type = 'tool_called' then 'tool'
            when events.event_type = 'handoff_requested' then 'handoff_reason'
            when events.event_type = 'agent_message' then 'model'
            when events.event_type in ('flow_started', 'flow_completed', 'flow_abandoned') then 'flow'
            when events.event_type = 'button_clicked' then 'button'
            when events.event_type = 'user_message' then 'intent'
        end as dimension,
        case
            when events.event_type = 'fallback_triggered' then events.topic
            when events.event_type = 'tool_called' then events.tool_name
            when events.event_type = 'handoff_requested' then events.reason
            when events.event_type = 'agent_message' then events.model
            when events.event_type in ('flow_started', 'flow_completed', 'flow_abandoned') then events.flow_name
            when events.event_type = 'button_clicked' then events.button
            when events.event_type = 'user_message' then events.intent
        end as dimension_value,
        events.event_type,
        events.latency_ms
    from events
    union all
    select
        events.conversation_id,
        'page' as dimension,
        events.page_url as dimension_value,
        events.event_type,
        null as latency_ms
    from events
    where events.page_url is not null
),

values_counted as (
    select
        dimension_events.conversation_id,
        dimension_events.dimension,
        coalesce(dimension_events.dimension_value, 'unknown') as dimension_value,
        count(*) as events,
        count(case when dimension_events.event_type = 'flow_started' then 1 end) as flows_started,
        count(case when dimension_events.event_type = 'flow_completed' then 1 end) as flows_completed,
        count(case when dimension_events.event_type = 'flow_abandoned' then 1 end) as flows_abandoned,
        {{ exact_sum('dimension_events.latency_ms') }} as latency_ms_total,
        count(dimension_events.latency_ms) as latency_measurements
    from dimension_events
    where dimension_events.dimension is not null
    group by
        dimension_events.conversation_id,
        dimension_events.dimension,
        coalesce(dimension_events.dimension_value, 'unknown')
)

{{ select_with_conversation_date('values_counted') }}
