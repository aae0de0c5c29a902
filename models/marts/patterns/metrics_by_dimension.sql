{#- Daily breakdowns by every staged dimension, in one long table. The
    population is fct_conversation_paths (so exclude_development_traffic
    applies); a conversation's day is its conversation_date. Incremental,
    replaced a whole metric_date at a time: a run recomputes every day
    holding a conversation whose facts, path or dimension values may have
    changed (new events, or the clock carrying it across the abandonment
    window: is_day_to_refresh), and a changed path_cleaning seed or
    exclude_development_traffic rebuilds every day. -#}
{{ config(
    unique_key=['metric_date', 'dimension', 'dimension_value'],
    scope_key='metric_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('metric_date' if target.type == 'spark' else none),
) }}

{%- set double = type_double() %}
{%- set scope_days = ref('scope_days') %}

with

paths as (
    select
        conversation_id,
        conversation_date,
        is_successful
    from {{ ref('fct_conversation_paths') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

conversations as (
    select
        conversation_id,
        environment,
        initialized,
        started,
        engaged,
        user_turns,
        was_completed,
        had_handoff,
        was_abandoned,
        converted,
        satisfaction_score,
        first_response_ms
    from {{ ref('fct_conversations') }}
    where conversation_id in (select paths.conversation_id from paths)
),

dimension_values as (
    select
        conversation_id,
        dimension,
        dimension_value,
        events,
        flows_started,
        flows_completed,
        flows_abandoned,
        latency_ms_total,
        latency_measurements
    from {{ ref('int_conversation_dimension_values') }}
    where conversation_id in (select paths.conversation_id from paths)
),

-- environment is a conversation attribute: exactly one value per conversation
environment_values as (
    select
        conversations.conversation_id,
        'environment' as dimension,
        coalesce(conversations.environment, 'unknown') as dimension_value,
        cast(null as {{ dbt.type_bigint() }}) as events,
        cast(null as {{ dbt.type_bigint() }}) as flows_started,
        cast(null as {{ dbt.type_bigint() }}) as flows_completed,
        cast(null as {{ dbt.type_bigint() }}) as flows_abandoned,
        cast(null as {{ double }}) as latency_ms_total,
        cast(null as {{ dbt.type_bigint() }}) as latency_measurements
    from conversations
),

all_values as (
    select * from dimension_values
    union all
    select * from environment_values
),

values_in_scope as (
    select
        paths.conversation_date,
        paths.is_successful,
        all_values.*,
        conversations.initialized,
        conversations.started,
        conversations.engaged,
        conversations.user_turns,
        conversations.was_completed,
        conversations.had_handoff,
        conversations.was_abandoned,
        conversations.converted,
        conversations.satisfaction_score,
        conversations.first_response_ms
    from all_values
    inner join paths
        on all_values.conversation_id = paths.conversation_id
    inner join conversations
        on all_values.conversation_id = conversations.conversation_id
),

day_sizes as (
    select
        paths.conversation_date,
        count(*) as day_conversations
    from paths
    group by paths.conversation_date
),

values_aggregated as (
    select
        values_in_scope.conversation_date,
        values_in_scope.dimension,
        values_in_scope.dimension_value,
        sum(values_in_scope.events) as events,
        count(*) as conversations,
        sum(case when values_in_scope.started then 1 else 0 end) as started_conversations,
        sum(case when values_in_scope.initialized then 1 else 0 end) as initialized_conversations,
        sum(case when values_in_scope.initialized and values_in_scope.engaged then 1 else 0 end)
            as initialized_engaged_conversations,
        sum(case when values_in_scope.started and values_in_scope.was_completed then 1 else 0 end)
            as completed_conversations,
        sum(case when values_in_scope.started and values_in_scope.is_successful then 1 else 0 end)
            as successful_conversations,
        sum(case when values_in_scope.started and values_in_scope.had_handoff then 1 else 0 end)
            as handoff_conversations,
        sum(case when values_in_scope.started and values_in_scope.was_abandoned then 1 else 0 end)
            as abandoned_conversations,
        sum(case when values_in_scope.started and values_in_scope.converted then 1 else 0 end)
            as converted_conversations,
        sum(case when values_in_scope.started then values_in_scope.user_turns end) as started_user_turns,
        {{ exact_sum('case when values_in_scope.started then values_in_scope.satisfaction_score end') }}
            as satisfaction_total,
        {{ exact_sum('values_in_scope.first_response_ms') }} as first_response_ms_total,
        count(values_in_scope.first_response_ms) as first_responses,
        sum(values_in_scope.flows_started) as flows_started,
        sum(values_in_scope.flows_completed) as flows_completed,
        sum(values_in_scope.flows_abandoned) as flows_abandoned,
        {{ exact_sum('values_in_scope.latency_ms_total') }} as latency_ms_total,
        sum(values_in_scope.latency_measurements) as latency_measurements
    from values_in_scope
    group by
        values_in_scope.conversation_date,
        values_in_scope.dimension,
        values_in_scope.dimension_value
),

values_rated as (
    select
        values_aggregated.*,
        day_sizes.day_conversations,
        sum(values_aggregated.events) over (
            partition by values_aggregated.conversation_date, values_aggregated.dimension
        ) as dimension_day_events
    from values_aggregated
    inner join day_sizes
        on values_aggregated.conversation_date = day_sizes.conversation_date
),

final as (
    select
        cast(values_rated.conversation_date as {{ type_date() }}) as metric_date,
        cast(values_rated.dimension as {{ dbt.type_string() }}) as dimension,
        cast(values_rated.dimension_value as {{ dbt.type_string() }}) as dimension_value,
        cast(values_rated.events as {{ dbt.type_bigint() }}) as events,
        cast(
            cast(values_rated.events as {{ double }}) / nullif(values_rated.dimension_day_events, 0) as {{ double }}
        ) as event_share,
        cast(values_rated.conversations as {{ dbt.type_bigint() }}) as conversations,
        cast(
            cast(values_rated.conversations as {{ double }}) / values_rated.day_conversations as {{ double }}
        ) as conversation_share,
        cast(values_rated.started_conversations as {{ dbt.type_bigint() }}) as started_conversations,
        cast(values_rated.completed_conversations as {{ dbt.type_bigint() }}) as completed_conversations,
        cast(
            cast(values_rated.completed_conversations as {{ double }})
            / nullif(values_rated.started_conversations, 0) as {{ double }}
        ) as completion_rate,
        cast(values_rated.successful_conversations as {{ dbt.type_bigint() }}) as successful_conversations,
        cast(
            cast(values_rated.successful_conversations as {{ double }})
            / nullif(values_rated.started_conversations, 0) as {{ double }}
        ) as success_rate,
        cast(values_rated.handoff_conversations as {{ dbt.type_bigint() }}) as handoff_conversations,
        cast(
            cast(values_rated.handoff_conversations as {{ double }})
            / nullif(values_rated.started_conversations, 0) as {{ double }}
        ) as handoff_rate,
        cast(values_rated.abandoned_conversations as {{ dbt.type_bigint() }}) as abandoned_conversations,
        cast(values_rated.converted_conversations as {{ dbt.type_bigint() }}) as converted_conversations,
        cast(
            cast(values_rated.converted_conversations as {{ double }})
            / nullif(values_rated.started_conversations, 0) as {{ double }}
        ) as conversion_rate,
        cast(
            values_rated.satisfaction_total / nullif(values_rated.started_conversations, 0) as {{ double }}
        ) as avg_satisfaction_score,
        cast(
            values_rated.first_response_ms_total / nullif(values_rated.first_responses, 0) as {{ double }}
        ) as avg_first_response_ms,
        cast(
            cast(values_rated.started_user_turns as {{ double }})
            / nullif(values_rated.started_conversations, 0) as {{ double }}
        ) as avg_user_turns,
        cast(values_rated.initialized_conversations as {{ dbt.type_bigint() }}) as initialized_conversations,
        cast(
            cast(values_rated.initialized_engaged_conversations as {{ double }})
            / nullif(values_rated.initialized_conversations, 0) as {{ double }}
        ) as interaction_rate,
        cast(
            case when values_rated.dimension = 'flow' then values_rated.flows_started end as {{ dbt.type_bigint() }}
        ) as flows_started,
        cast(
            case when values_rated.dimension = 'flow' then values_rated.flows_completed end as {{ dbt.type_bigint() }}
        ) as flows_completed,
        cast(
            case when values_rated.dimension = 'flow' then values_rated.flows_abandoned end as {{ dbt.type_bigint() }}
        ) as flows_abandoned,
        cast(
            values_rated.latency_ms_total / nullif(values_rated.latency_measurements, 0) as {{ double }}
        ) as avg_latency_ms
    from values_rated
)

select * from final
