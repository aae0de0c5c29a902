{{ config(
    unique_key=['funnel_name', 'conversation_date', 'channel', 'stage'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- The channel rows of funnel_stage_daily_breakdown: one counting rule for
-- both tables, so they cannot drift apart. Replaced day by day, the days
-- the breakdown replaces.

with

days_in_scope as (  -- noqa: ST03
    select event_date from {{ ref('scope_days') }}
),

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
    {%- if is_incremental() %}
        and conversation_date in (select days_in_scope.event_date from days_in_scope)
    {%- endif %}
)

select * from stages_by_channel
