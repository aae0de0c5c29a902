{#- Per day, channel, agent, environment and turn, the conversations of
    that day abandoned at that turn: the day partials abandon_turns sums,
    published so that any period's top abandon turns, with the dashboard's
    filters, is a small sum (the dashboard's Funnels page, the read API,
    `convo-warehouse funnel`). Replaced a whole conversation_date at a time:
    a run recomputes the days of the conversations with new events and of
    those the moved clock carried across the abandonment window. -#}
{{ config(
    unique_key=['conversation_date', 'channel', 'agent_id', 'environment', 'turn'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

abandoned_conversations as (
    select
        conversation_date,
        coalesce(channel, 'unknown') as channel,
        coalesce(agent_id, 'unknown') as agent_id,
        coalesce(environment, 'unknown') as environment,
        abandoned_at_turn
    from {{ ref('fct_conversations') }}
    where
        was_abandoned
        and abandoned_at_turn is not null
    {%- if is_incremental() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

turn_days_counted as (
    select
        cast(abandoned_conversations.conversation_date as {{ type_date() }}) as conversation_date,
        cast(abandoned_conversations.channel as {{ dbt.type_string() }}) as channel,
        cast(abandoned_conversations.agent_id as {{ dbt.type_string() }}) as agent_id,
        cast(abandoned_conversations.environment as {{ dbt.type_string() }}) as environment,
        cast(abandoned_conversations.abandoned_at_turn as {{ dbt.type_int() }}) as turn,
        cast(count(*) as {{ dbt.type_bigint() }}) as conversations
    from abandoned_conversations
    group by
        abandoned_conversations.conversation_date,
        abandoned_conversations.channel,
        abandoned_conversations.agent_id,
        abandoned_conversations.environment,
        abandoned_conversations.abandoned_at_turn
)

select * from turn_days_counted
