-- The channel rows of funnel_stage_daily_breakdown: one counting rule for
-- both tables, so they cannot drift apart. Replaced day by day, the days
-- the breakdown replaces.

with

stages_by_channel as (
    select
        funnel_name,
        conversation_date,
        segment_value as channel,
        stage,
        stage_order,
        conversations,
        reached,
        reached_in_order
    from {{ ref('funnel_stage_daily_breakdown') }}
    where
        segment_type = 'channel'
        and {{ touched('conversation_date', 'day') }}
)

select * from stages_by_channel
