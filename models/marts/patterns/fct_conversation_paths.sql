{#- One row per conversation of the patterns population: its path, outcome
    and success, read by the day partials of the patterns marts. The
    population (all environments, or without `development` when the var
    exclude_development_traffic is true: macro patterns_in_scope, shared
    with fct_sales_conversations) and the rule of success live here.
    Replaced conversation by conversation for the conversations of
    scope_conversations (new events, a new outcome by the clock); so with
    exclude_development_traffic true a conversation that a late setup event
    turns into `development` loses its row. -#}
{{ config(
    unique_key='conversation_id',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

conversations as (
    select
        conversation_id,
        conversation_date,
        channel,
        environment,
        outcome,
        started
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        -- they all lie on the scope's days: Spark reads only those partitions
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

conversations_in_population as (
    select conversations.*
    from conversations
    where {{ patterns_in_scope('conversations.environment') }}
),

steps as (
    select
        conversation_id,
        step_number,
        step
    from {{ ref('int_conversation_steps_cleaned') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
),

paths_aggregated as (
    select
        steps.conversation_id,
        {{ string_agg_ordered('steps.step', "' > '", 'steps.step_number') }} as steps_path,
        count(*) as steps_before_outcome,
        {{ first_value_by('steps.step', 'steps.step_number') }} as first_step
    from steps
    group by steps.conversation_id
),

paths_ended as (
    select
        conversations_in_population.conversation_id,
        conversations_in_population.conversation_date,
        conversations_in_population.channel,
        conversations_in_population.environment,
        conversations_in_population.outcome,
        conversations_in_population.started,
        -- success: converted, or completed without a handoff (outcome
        -- `completed` already means no handoff and no conversion)
        conversations_in_population.outcome in ('converted', 'completed') as is_successful,
        'outcome:' || conversations_in_population.outcome as outcome_step,
        coalesce(paths_aggregated.steps_before_outcome, 0) as steps_before_outcome,
        coalesce(paths_aggregated.first_step, 'outcome:' || conversations_in_population.outcome) as first_step,
        coalesce(paths_aggregated.steps_path || ' > ', '') || 'outcome:' || conversations_in_population.outcome
            as path  -- noqa: RF04
    from conversations_in_population
    left join paths_aggregated
        on conversations_in_population.conversation_id = paths_aggregated.conversation_id
),

final as (
    select
        cast(paths_ended.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(paths_ended.conversation_date as {{ type_date() }}) as conversation_date,
        cast(paths_ended.channel as {{ dbt.type_string() }}) as channel,
        cast(paths_ended.environment as {{ dbt.type_string() }}) as environment,
        cast(paths_ended.outcome as {{ dbt.type_string() }}) as outcome,
        cast(paths_ended.started as {{ dbt.type_boolean() }}) as started,
        cast(paths_ended.is_successful as {{ dbt.type_boolean() }}) as is_successful,
        cast(paths_ended.path as {{ dbt.type_string() }}) as path,  -- noqa: RF04
        cast(paths_ended.steps_before_outcome + 1 as {{ dbt.type_int() }}) as path_length,
        cast(paths_ended.first_step as {{ dbt.type_string() }}) as first_step,
        cast(paths_ended.outcome_step as {{ dbt.type_string() }}) as outcome_step
    from paths_ended
)

select * from final
