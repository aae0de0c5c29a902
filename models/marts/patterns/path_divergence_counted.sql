-- One row per comparison x segment x scope x depth x step tested for
-- divergence: how many successful and how many failed conversations of the
-- comparison's population have the step, and the two group sizes;
-- path_divergence_scored adds the statistics. The sums over days of the day
-- partials (int_divergence_population_days_counted,
-- int_divergence_step_days_counted: the populations and the candidate steps
-- are defined there), which a run rewrites for the days in scope. A
-- population needs both groups; a step (or a step at a depth) needs
-- var('divergence_min_conversations') conversations of the population.
{{ config(materialized='view') }}
with

population_days as (
    select
        comparison,
        segment_type,
        segment_value,
        successful_conversations,
        failed_conversations
    from {{ ref('int_divergence_population_days_counted') }}
),

step_days as (
    select
        comparison,
        segment_type,
        segment_value,
        scope,
        depth,
        step,
        successful_with_step,
        failed_with_step
    from {{ ref('int_divergence_step_days_counted') }}
),

populations as (
    select
        population_days.comparison,
        population_days.segment_type,
        population_days.segment_value,
        sum(population_days.successful_conversations) as successful_conversations,
        sum(population_days.failed_conversations) as failed_conversations
    from population_days
    group by
        population_days.comparison,
        population_days.segment_type,
        population_days.segment_value
),

steps_counted as (
    select
        step_days.comparison,
        step_days.segment_type,
        step_days.segment_value,
        step_days.scope,
        step_days.depth,
        step_days.step,
        sum(step_days.successful_with_step) as successful_with_step,
        sum(step_days.failed_with_step) as failed_with_step
    from step_days
    group by
        step_days.comparison,
        step_days.segment_type,
        step_days.segment_value,
        step_days.scope,
        step_days.depth,
        step_days.step
    having
        sum(step_days.successful_with_step + step_days.failed_with_step)
        >= {{ var('divergence_min_conversations') | int }}
),

final as (
    select
        cast(populations.comparison as {{ dbt.type_string() }}) as comparison,
        cast(populations.segment_type as {{ dbt.type_string() }}) as segment_type,
        cast(populations.segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(steps_counted.scope as {{ dbt.type_string() }}) as scope,
        cast(steps_counted.depth as {{ dbt.type_int() }}) as depth,  -- noqa: RF04
        cast(steps_counted.step as {{ dbt.type_string() }}) as step,
        cast(steps_counted.successful_with_step as {{ dbt.type_bigint() }}) as successful_with_step,
        cast(populations.successful_conversations as {{ dbt.type_bigint() }}) as successful_conversations,
        cast(steps_counted.failed_with_step as {{ dbt.type_bigint() }}) as failed_with_step,
        cast(populations.failed_conversations as {{ dbt.type_bigint() }}) as failed_conversations
    from steps_counted
    inner join populations
        on
            steps_counted.comparison = populations.comparison
            and steps_counted.segment_type = populations.segment_type
            and steps_counted.segment_value = populations.segment_value
    where
        populations.successful_conversations > 0
        and populations.failed_conversations > 0
)

select * from final
