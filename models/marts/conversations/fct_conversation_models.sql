{#- One row per conversation x model that wrote at least one of its agent
    messages (agent_message.model; no model: 'unknown'): how many messages,
    the tokens read and written, and the reply latency measured, for the
    per-model comparison (joined to metrics_by_conversation for the
    conversation's outcome). Replaced conversation by conversation for the
    conversations with new events, and recorded by conversation_date, so the
    snapshot publishes only the days a run rewrote. -#}
{{ config(
    unique_key=['conversation_id', 'model'],
) }}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

agent_messages as (
    select
        stg_events.conversation_id,
        coalesce(stg_events.model, 'unknown') as model,  -- noqa: RF04
        stg_events.input_tokens,
        stg_events.output_tokens,
        stg_events.latency_ms
    from {{ ref('stg_events') }} as stg_events
    where
        stg_events.event_type = 'agent_message'
        and stg_events.is_known_type
        and stg_events.conversation_id is not null
    {%- if is_incremental() %}
        and stg_events.conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

conversation_days as (
    select
        fct_conversations.conversation_id,
        fct_conversations.conversation_date
    from {{ ref('fct_conversations') }} as fct_conversations
    {%- if is_incremental() %}
    where fct_conversations.conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

conversation_models as (
    select
        agent_messages.conversation_id,
        agent_messages.model,
        count(*) as agent_messages,
        count(agent_messages.input_tokens) + count(agent_messages.output_tokens) as token_measurements,
        coalesce(sum(agent_messages.input_tokens), 0) as input_tokens,
        coalesce(sum(agent_messages.output_tokens), 0) as output_tokens,
        {{ exact_sum('agent_messages.latency_ms') }} as latency_ms_total,
        count(agent_messages.latency_ms) as latency_measurements
    from agent_messages
    group by
        agent_messages.conversation_id,
        agent_messages.model
),

final as (
    select
        cast(conversation_models.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(conversation_models.model as {{ dbt.type_string() }}) as model,  -- noqa: RF04
        cast(conversation_days.conversation_date as {{ type_date() }}) as conversation_date,
        cast(conversation_models.agent_messages as {{ dbt.type_bigint() }}) as agent_messages,
        cast(conversation_models.token_measurements as {{ dbt.type_bigint() }}) as token_measurements,
        cast(conversation_models.input_tokens as {{ dbt.type_bigint() }}) as input_tokens,
        cast(conversation_models.output_tokens as {{ dbt.type_bigint() }}) as output_tokens,
        cast(conversation_models.latency_ms_total as {{ type_double() }}) as latency_ms_total,
        cast(conversation_models.latency_measurements as {{ dbt.type_bigint() }}) as latency_measurements
    from conversation_models
    left join conversation_days
        on conversation_models.conversation_id = conversation_days.conversation_id
)

select * from final
