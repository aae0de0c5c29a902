{{ config(materialized='table', tags=['static']) }}
with

funnel_stage_rules as (
    select
        funnel_name,
        stage_order,
        stage,
        counting
    from {{ ref('stg_seeds__funnel_stages') }}
),

-- the reading the funnel is shown in: whatever its rows say (the seed test
-- rejects two different values), in_order when none says
funnel_readings as (
    select
        funnel_stage_rules.funnel_name,
        coalesce(max(funnel_stage_rules.counting), 'in_order') as counting
    from funnel_stage_rules
    group by funnel_stage_rules.funnel_name
),

funnel_stages as (
    select distinct
        funnel_stage_rules.funnel_name,
        funnel_stage_rules.stage_order,
        funnel_stage_rules.stage
    from funnel_stage_rules
),

funnel_stages_ordered as (
    select
        funnel_stages.funnel_name,
        funnel_stages.stage,
        funnel_stages.stage_order,
        row_number() over (
            partition by funnel_stages.funnel_name
            order by funnel_stages.stage_order
        ) as stage_position,
        lag(funnel_stages.stage) over (
            partition by funnel_stages.funnel_name
            order by funnel_stages.stage_order
        ) as previous_stage,
        lead(funnel_stages.stage) over (
            partition by funnel_stages.funnel_name
            order by funnel_stages.stage_order
        ) as next_stage,
        lead(funnel_stages.stage_order) over (
            partition by funnel_stages.funnel_name
            order by funnel_stages.stage_order
        ) as next_stage_order,
        min(funnel_stages.stage_order) over (
            partition by funnel_stages.funnel_name
        ) as first_stage_order,
        max(funnel_stages.stage_order) over (
            partition by funnel_stages.funnel_name
        ) as last_stage_order
    from funnel_stages
),

funnel_stages_flagged as (
    select
        funnel_stages_ordered.funnel_name,
        funnel_stages_ordered.stage,
        funnel_stages_ordered.stage_order,
        funnel_stages_ordered.stage_position,
        funnel_stages_ordered.previous_stage,
        funnel_stages_ordered.next_stage,
        funnel_stages_ordered.next_stage_order,
        funnel_stages_ordered.stage_order = funnel_stages_ordered.first_stage_order as is_first_stage,
        funnel_stages_ordered.stage_order = funnel_stages_ordered.last_stage_order as is_last_stage,
        funnel_readings.counting
    from funnel_stages_ordered
    inner join funnel_readings
        on funnel_stages_ordered.funnel_name = funnel_readings.funnel_name
)

select * from funnel_stages_flagged
