{#- The transcripts served to the dashboard's drill-down: user and agent
    messages in conversation order (time, then event_id, as everywhere).
    Incremental, keyed by message: a run recomputes the messages of the
    conversations with newly loaded events (scope_conversations),
    so a late message renumbers its conversation's other messages too. A
    conversation's messages only grow between builds (a staged event keeps
    its id, type and conversation; a re-mapped history rebuilds every row),
    so replacing the recomputed event ids replaces every row that changed. -#}
{{ config(
    unique_key='event_id',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

messages as (
    select
        stg_events.event_id,
        stg_events.conversation_id,
        stg_events.event_type,
        stg_events.event_at,
        stg_events.turn,
        stg_events.content
    from {{ events_in_scope if is_incremental() else staged_events }} as stg_events
    where
        stg_events.event_type in ('user_message', 'agent_message')
        and stg_events.conversation_id is not null
),

messages_ordered as (
    select
        messages.event_id,
        messages.conversation_id,
        messages.event_type,
        messages.event_at as message_at,
        cast(row_number() over (
            partition by messages.conversation_id
            order by messages.event_at, messages.event_id
        ) as {{ dbt.type_bigint() }}) as message_order,
        messages.turn,
        messages.content
    from messages
)

{{ select_with_conversation_date('messages_ordered') }}
