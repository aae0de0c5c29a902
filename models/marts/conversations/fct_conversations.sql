{#- Publishes int_conversations_summarized under the enforced contract; every
    rule lives in the intermediate models. Incremental, keyed by
    conversation: a run replaces the rows of the conversations
    conversations_to_refresh_cte() selects (newly loaded events, or carried
    across the abandonment window by the moved clock), the same set
    int_conversations_summarized recomputed. -#}
{{ config(
    unique_key='conversation_id',
) }}

with

conversations_in_scope as (
    select conversation_id from {{ ref('scope_conversations') }}
),

conversations as (
    select
        conversation_id,
        user_id,
        channel,
        agent_id,
        device,
        source,
        language,
        environment,
        first_event_at,
        conversation_date,
        initialized,
        started_at,
        started,
        last_event_at,
        duration_seconds,
        engaged,
        user_turns,
        agent_messages,
        tool_calls,
        fallback_count,
        had_handoff,
        was_completed,
        was_abandoned,
        abandoned_at_turn,
        converted,
        feedback_score,
        first_response_ms,
        satisfaction_score,
        rephrase_count,
        outcome,
        initialized_at,
        first_user_message_at,
        first_agent_message_at,
        completed_at,
        converted_at,
        last_user_message
    from {{ ref('int_conversations_summarized') }}
    {%- if is_incremental() %}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
)

select * from conversations
