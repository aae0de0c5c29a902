{#- One row per finished conversation x divergence population it belongs
    to, with its conversation_date and whether it counts as successful
    there: a view, read by the day partials for the days they rewrite. A population is a comparison x segment
    (path_divergence):
      overall / all / all                 started, finished conversations
                                          (fct_conversation_paths:
                                          outcome not `in_progress`),
                                          success = is_successful;
      overall / experiment:<test> / <v>   the same, exposed to variant v of
                                          the test (not contaminated);
      funnel:<name> / all / all           finished conversations that
                                          reached the funnel's first stage,
                                          success = reached its last stage. -#}
{{ config(materialized='view') }}

with

paths as (
    select
        conversation_id,
        conversation_date,
        started,
        is_successful
    from {{ ref('fct_conversation_paths') }}
    where outcome != 'in_progress'
),

stages_reached as (
    select
        conversation_id,
        {{ conversation_date_on_spark() }}
        funnel_name,
        stage
    from {{ ref('int_conversation_stages_combined') }}
),

funnel_stages as (
    select
        funnel_name,
        stage,
        is_first_stage,
        is_last_stage
    from {{ ref('int_funnel_stages_ordered') }}
),

exposures as (
    select
        test_name,
        variant,
        {{ conversation_date_on_spark() }}
        conversation_id
    from {{ ref('int_ab_test_exposures_checked') }}
    where variant_count = 1
),

funnel_ends as (
    select
        funnel_stages.funnel_name,
        max(case when funnel_stages.is_first_stage then funnel_stages.stage end) as first_stage,
        max(case when funnel_stages.is_last_stage then funnel_stages.stage end) as last_stage
    from funnel_stages
    group by funnel_stages.funnel_name
),

funnel_memberships as (
    select
        {{ dbt.concat(["'funnel:'", 'funnel_ends.funnel_name']) }} as comparison,
        'all' as segment_type,
        'all' as segment_value,
        stages_reached.conversation_id,
        paths.conversation_date,
        max(case when stages_reached.stage = funnel_ends.last_stage then 1 else 0 end) = 1 as is_successful
    from stages_reached
    inner join funnel_ends
        on
            stages_reached.funnel_name = funnel_ends.funnel_name
            and stages_reached.stage in (funnel_ends.first_stage, funnel_ends.last_stage)
    inner join paths
        on {{ same_conversation('paths', 'stages_reached', 'paths.conversation_date') }}
    group by
        funnel_ends.funnel_name,
        stages_reached.conversation_id,
        paths.conversation_date
    having max(case when stages_reached.stage = funnel_ends.first_stage then 1 else 0 end) = 1
),

memberships_listed as (
    select
        'overall' as comparison,
        'all' as segment_type,
        'all' as segment_value,
        paths.conversation_id,
        paths.conversation_date,
        paths.is_successful
    from paths
    where paths.started

    union all

    select
        'overall' as comparison,
        {{ dbt.concat(["'experiment:'", 'exposures.test_name']) }} as segment_type,
        exposures.variant as segment_value,
        paths.conversation_id,
        paths.conversation_date,
        paths.is_successful
    -- the paths on the right: DuckDB hashes the side written there (profiles.yml
    -- keeps it), so a reader's day filter leaves it small and the exposures'
    -- scan skips the row groups of other conversations
    from exposures
    inner join paths
        on {{ same_conversation('paths', 'exposures', 'paths.conversation_date') }}
    where paths.started

    union all

    select
        funnel_memberships.comparison,
        funnel_memberships.segment_type,
        funnel_memberships.segment_value,
        funnel_memberships.conversation_id,
        funnel_memberships.conversation_date,
        funnel_memberships.is_successful
    from funnel_memberships
)

select * from memberships_listed
