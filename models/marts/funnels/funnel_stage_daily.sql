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

{%- set scope_days = ref('scope_days') %}

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
    {%- if is_incremental() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
)

select * from stages_by_channel
