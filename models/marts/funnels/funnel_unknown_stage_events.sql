-- Data-quality report: stage_reached events whose (funnel, stage) is not in
-- seeds/funnel_stages.csv. Funnel tables ignore them; add the stage to the
-- seed (or fix the sender) and they count on the next run.
{{ config(materialized='view') }}
with

unknown_stage_days as (
    select
        funnel_name,
        stage,
        events,
        conversations,
        first_seen_at,
        last_seen_at
    from {{ ref('int_unknown_stage_event_days_counted') }}
),

-- a conversation counts on its own day only: distinct counts add up
unknown_stages_counted as (
    select
        cast(unknown_stage_days.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(unknown_stage_days.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(sum(unknown_stage_days.events) as {{ dbt.type_bigint() }}) as events,
        cast(sum(unknown_stage_days.conversations) as {{ dbt.type_bigint() }}) as conversations,
        min(unknown_stage_days.first_seen_at) as first_seen_at,
        max(unknown_stage_days.last_seen_at) as last_seen_at
    from unknown_stage_days
    group by
        unknown_stage_days.funnel_name,
        unknown_stage_days.stage
)

select * from unknown_stages_counted
