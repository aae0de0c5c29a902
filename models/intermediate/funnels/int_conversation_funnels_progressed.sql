{{ config(
    unique_key=['conversation_id', 'funnel_name'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- How far each conversation got in each funnel it entered: its highest stage
-- reached (stages may be skipped), the stage after it, and whether the
-- conversion window is still open. Incremental: a run recomputes every row of
-- the conversations with newly loaded events or new stage classifications, and
-- of those whose conversion window the warehouse clock closed
-- (scope_conversations).

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

conversation_funnel_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        stage_order,
        is_reached_in_order,
        reached_at
    from {{ ref('fct_conversation_stages') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
),

funnel_stages as (
    select
        funnel_name,
        stage,
        stage_order,
        next_stage,
        next_stage_order,
        is_first_stage,
        is_last_stage
    from {{ ref('int_funnel_stages_ordered') }}
),

conversations as (
    select
        conversation_id,
        first_event_at
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        -- they all lie on the scope's days: Spark reads only those partitions
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

newest_event as (
    select clock as newest_event_at
    from {{ ref('scope_run') }}
),

-- over the stages reached (fct_conversation_stages has no row for the others)
funnel_progress as (
    select
        conversation_funnel_stages.conversation_id,
        conversation_funnel_stages.funnel_name,
        max(conversation_funnel_stages.stage_order) as last_stage_order,
        -- is_reached_in_order holds for a prefix of the stages (every stage
        -- before it reached, each not later than the next): its end
        max(
            case when conversation_funnel_stages.is_reached_in_order then conversation_funnel_stages.stage_order end
        ) as last_in_order_stage_order,
        max(case when funnel_stages.is_first_stage then 1 else 0 end) = 1 as has_reached_first_stage,
        max(case when funnel_stages.is_last_stage then 1 else 0 end) = 1 as has_reached_last_stage
    from conversation_funnel_stages
    inner join funnel_stages
        on
            conversation_funnel_stages.funnel_name = funnel_stages.funnel_name
            and conversation_funnel_stages.stage = funnel_stages.stage
    group by
        conversation_funnel_stages.conversation_id,
        conversation_funnel_stages.funnel_name
),

funnel_progress_with_stages as (
    select
        funnel_progress.conversation_id,
        funnel_progress.funnel_name,
        funnel_progress.has_reached_first_stage,
        funnel_progress.has_reached_last_stage,
        funnel_stages.stage as last_stage,
        funnel_progress.last_stage_order,
        funnel_progress.last_in_order_stage_order,
        conversation_funnel_stages.reached_at as last_stage_reached_at,
        funnel_stages.next_stage,
        funnel_stages.next_stage_order,
        conversations.first_event_at,
        -- the window is open while the newest event in the warehouse is less
        -- than funnel_conversion_window_hours after the conversation's first event
        coalesce(
            {{ dbt.dateadd('hour', var('funnel_conversion_window_hours', 24), 'conversations.first_event_at') }}
            > newest_event.newest_event_at,
            false
        ) as is_window_open
    from funnel_progress
    inner join funnel_stages
        on
            funnel_progress.funnel_name = funnel_stages.funnel_name
            and funnel_progress.last_stage_order = funnel_stages.stage_order
    inner join conversation_funnel_stages
        on
            funnel_progress.conversation_id = conversation_funnel_stages.conversation_id
            and funnel_progress.funnel_name = conversation_funnel_stages.funnel_name
            and funnel_progress.last_stage_order = conversation_funnel_stages.stage_order
    left join conversations
        on funnel_progress.conversation_id = conversations.conversation_id
    cross join newest_event
)

{{ select_with_conversation_date('funnel_progress_with_stages') }}
