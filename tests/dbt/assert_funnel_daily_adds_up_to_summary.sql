{{ config(meta={'dagster': {'ref': {'name': 'funnel_stage_daily'}}}) }}

-- Summed over days and channels, funnel_stage_daily gives funnel_summary's
-- reached and reached_in_order for every stage, and its population is the
-- first stage's reached.
with

daily_totals as (
    select
        funnel_name,
        stage,
        sum(conversations) as conversations,
        sum(reached) as reached,
        sum(reached_in_order) as reached_in_order
    from {{ ref('funnel_stage_daily') }}
    group by funnel_name, stage
),

summary as (
    select
        funnel_name,
        stage,
        reached,
        reached_in_order,
        first_value(reached) over (
            partition by funnel_name
            order by stage_order
            rows between unbounded preceding and current row
        ) as first_stage_reached
    from {{ ref('funnel_summary') }}
),

mismatches as (
    select
        summary.funnel_name,
        summary.stage,
        summary.reached,
        daily_totals.reached as daily_reached,
        summary.reached_in_order,
        daily_totals.reached_in_order as daily_reached_in_order,
        summary.first_stage_reached,
        daily_totals.conversations as daily_conversations
    from summary
    left join daily_totals
        on
            summary.funnel_name = daily_totals.funnel_name
            and summary.stage = daily_totals.stage
    where
        coalesce(daily_totals.reached, 0) != summary.reached
        or coalesce(daily_totals.reached_in_order, 0) != summary.reached_in_order
        or coalesce(daily_totals.conversations, 0) != summary.first_stage_reached
)

select * from mismatches
