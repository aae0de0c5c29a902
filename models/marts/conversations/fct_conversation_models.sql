{#- One row per conversation x model that wrote at least one of its agent
    messages (agent_message.model; no model: 'unknown'): how many messages,
    the tokens read and written, the reply latency measured, and what the
    model calls cost, for the per-model comparison (joined to
    metrics_by_conversation for the conversation's outcome). Replaced
    conversation by conversation for the conversations with new events, and
    recorded by conversation_date, so the snapshot publishes only the days a
    run rewrote.
    Cost as Langfuse computes it: each agent message's input_tokens and
    output_tokens times the price per million tokens of its model that holds
    at the message's time (seeds/model_prices.csv through
    stg_seeds__model_prices; a missing token count adds nothing). A message
    whose model has no price at its time is counted in
    unpriced_agent_messages and costs nothing here: a price is never
    guessed. -#}
{{ config(
    unique_key=['conversation_id', 'model'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

agent_messages as (
    select
        stg_events.conversation_id,
        coalesce(stg_events.model, 'unknown') as model,  -- noqa: RF04
        stg_events.event_at,
        stg_events.input_tokens,
        stg_events.output_tokens,
        stg_events.latency_ms
    from {{ events_in_scope if is_incremental() else staged_events }} as stg_events
    where
        stg_events.event_type = 'agent_message'
        and stg_events.is_known_type
        and stg_events.conversation_id is not null
),

model_prices as (
    select
        model_key,
        input_price_per_million,
        output_price_per_million,
        valid_from,
        valid_until
    from {{ ref('stg_seeds__model_prices') }}
),

conversation_days as (
    select
        fct_conversations.conversation_id,
        fct_conversations.conversation_date
    from {{ ref('fct_conversations') }} as fct_conversations
    {%- if is_incremental() %}
    where
        fct_conversations.conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        -- they all lie on the scope's days: Spark reads only those partitions
        and {{ on_scope_days('fct_conversations.conversation_date', scope_days) }}
    {%- endif %}
),

-- the price period holding the message's time (periods of a model do not
-- overlap: each ends where the next begins), none for an unknown model
messages_priced as (
    select
        agent_messages.*,
        model_prices.input_price_per_million,
        model_prices.output_price_per_million,
        model_prices.model_key is not null as is_priced
    from agent_messages
    left join model_prices
        on
            lower(trim(agent_messages.model)) = model_prices.model_key
            and agent_messages.event_at >= cast(model_prices.valid_from as {{ dbt.type_timestamp() }})
            and (
                model_prices.valid_until is null
                or agent_messages.event_at < cast(model_prices.valid_until as {{ dbt.type_timestamp() }})
            )
),

messages_costed as (
    select
        messages_priced.*,
        coalesce(messages_priced.input_tokens, 0) * messages_priced.input_price_per_million / 1000000.0
            as input_cost_usd,
        coalesce(messages_priced.output_tokens, 0) * messages_priced.output_price_per_million / 1000000.0
            as output_cost_usd
    from messages_priced
),

conversation_models as (
    select
        messages_costed.conversation_id,
        messages_costed.model,
        count(*) as agent_messages,
        count(messages_costed.input_tokens) + count(messages_costed.output_tokens) as token_measurements,
        coalesce(sum(messages_costed.input_tokens), 0) as input_tokens,
        coalesce(sum(messages_costed.output_tokens), 0) as output_tokens,
        {{ exact_sum('messages_costed.latency_ms') }} as latency_ms_total,
        count(messages_costed.latency_ms) as latency_measurements,
        count(case when messages_costed.is_priced then 1 end) as priced_agent_messages,
        count(case when not messages_costed.is_priced then 1 end) as unpriced_agent_messages,
        {{ exact_sum('messages_costed.input_cost_usd') }} as input_cost_usd,
        {{ exact_sum('messages_costed.output_cost_usd') }} as output_cost_usd,
        {{ exact_sum('messages_costed.input_cost_usd + messages_costed.output_cost_usd') }} as cost_usd
    from messages_costed
    group by
        messages_costed.conversation_id,
        messages_costed.model
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
        cast(conversation_models.latency_measurements as {{ dbt.type_bigint() }}) as latency_measurements,
        cast(conversation_models.priced_agent_messages as {{ dbt.type_bigint() }}) as priced_agent_messages,
        cast(conversation_models.unpriced_agent_messages as {{ dbt.type_bigint() }}) as unpriced_agent_messages,
        cast(conversation_models.input_cost_usd as {{ type_double() }}) as input_cost_usd,
        cast(conversation_models.output_cost_usd as {{ type_double() }}) as output_cost_usd,
        cast(conversation_models.cost_usd as {{ type_double() }}) as cost_usd
    from conversation_models
    left join conversation_days
        on conversation_models.conversation_id = conversation_days.conversation_id
)

select * from final
