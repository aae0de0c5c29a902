{#- Per day, UTC hour of the first event, channel, agent and environment
    (the dashboard's filters), the conversations and the numerators and
    denominators of the timing rates (interaction, engagement,
    completion): the day partials timing_patterns sums by weekday and
    hour, published so that any period's heatmap is a small sum. Replaced a whole conversation_date at a time: a run recomputes the
    days of the conversations with new events and of those the moved clock
    carried across the abandonment window (their flags may change). -#}
{{ config(
    unique_key=['conversation_date', 'hour_of_day', 'channel', 'agent_id', 'environment'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set bigint = dbt.type_bigint() %}
{%- set scope_days = ref('scope_days') %}

with

conversations as (
    select
        conversation_date,
        first_event_at,
        coalesce(channel, 'unknown') as channel,
        coalesce(agent_id, 'unknown') as agent_id,
        coalesce(environment, 'unknown') as environment,
        initialized,
        started,
        engaged,
        was_completed
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

conversations_timed as (
    select
        conversations.*,
        extract(hour from conversations.first_event_at) as hour_of_day
    from conversations
),

hours_counted as (
    select
        cast(conversations_timed.conversation_date as {{ type_date() }}) as conversation_date,
        cast(conversations_timed.hour_of_day as {{ dbt.type_int() }}) as hour_of_day,
        cast(
            {{ iso_weekday('conversations_timed.conversation_date') }} as {{ dbt.type_int() }}
        ) as weekday,  -- noqa: RF04
        cast(conversations_timed.channel as {{ dbt.type_string() }}) as channel,
        cast(conversations_timed.agent_id as {{ dbt.type_string() }}) as agent_id,
        cast(conversations_timed.environment as {{ dbt.type_string() }}) as environment,
        cast(count(*) as {{ bigint }}) as conversations,
        cast(count(case when conversations_timed.initialized then 1 end) as {{ bigint }})
            as initialized_conversations,
        cast(
            count(case when conversations_timed.initialized and conversations_timed.engaged then 1 end) as {{ bigint }}
        ) as interacted_conversations,
        cast(count(case when conversations_timed.started then 1 end) as {{ bigint }}) as started_conversations,
        cast(
            count(case when conversations_timed.started and conversations_timed.engaged then 1 end) as {{ bigint }}
        ) as engaged_conversations,
        cast(
            count(case when conversations_timed.started and conversations_timed.was_completed then 1 end)
            as {{ bigint }}
        ) as completed_conversations
    from conversations_timed
    group by
        conversations_timed.conversation_date,
        conversations_timed.hour_of_day,
        conversations_timed.channel,
        conversations_timed.agent_id,
        conversations_timed.environment
)

select * from hours_counted
