{{ config(
    unique_key=['conversation_id', 'funnel_name', 'stage'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- Every stage a conversation reached (int_conversation_stages_combined) with
-- the in-order reading: a stage is reached in order when every earlier stage
-- of its funnel is reached too and each stage's time is not later than the
-- next one's (compared only where both times are known); and the seconds
-- from the previous stage and from the funnel's first stage. Stages not
-- reached have no row: a reader that needs every stage of a funnel a
-- conversation entered joins int_conversation_funnels_progressed to
-- int_funnel_stages_ordered.
-- Incremental: a run recomputes every row of the conversations with newly
-- loaded events or new stage classifications (scope_conversations).

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

funnel_stages as (
    select
        funnel_name,
        stage,
        stage_position,
        is_first_stage
    from {{ ref('int_funnel_stages_ordered') }}
),

conversation_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        stage_order,
        reached_at,
        source
    from {{ ref('int_conversation_stages_combined') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
),

-- each reached stage with the reached stage before it: that one is the
-- funnel's previous stage only when its position is one less
stages_with_previous as (
    select
        conversation_stages.conversation_id,
        conversation_stages.funnel_name,
        conversation_stages.stage,
        conversation_stages.stage_order,
        conversation_stages.reached_at,
        conversation_stages.source,
        funnel_stages.is_first_stage,
        coalesce(
            lag(funnel_stages.stage_position) over (
                partition by conversation_stages.conversation_id, conversation_stages.funnel_name
                order by conversation_stages.stage_order
            ) = funnel_stages.stage_position - 1,
            false
        ) as is_previous_stage_reached,
        lag(conversation_stages.reached_at) over (
            partition by conversation_stages.conversation_id, conversation_stages.funnel_name
            order by conversation_stages.stage_order
        ) as previous_reached_at,
        max(case when funnel_stages.is_first_stage then conversation_stages.reached_at end) over (
            partition by conversation_stages.conversation_id, conversation_stages.funnel_name
        ) as first_stage_reached_at
    from conversation_stages
    inner join funnel_stages
        on
            conversation_stages.funnel_name = funnel_stages.funnel_name
            and conversation_stages.stage = funnel_stages.stage
),

stages_step_checked as (
    select
        stages_with_previous.*,
        case
            when stages_with_previous.is_first_stage then 1
            when not stages_with_previous.is_previous_stage_reached then 0
            when stages_with_previous.previous_reached_at is null then 1
            when stages_with_previous.reached_at is null then 1
            when stages_with_previous.previous_reached_at <= stages_with_previous.reached_at then 1
            else 0
        end as is_step_in_order
    from stages_with_previous
),

stages_sequenced as (
    select
        cast(stages_step_checked.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(stages_step_checked.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stages_step_checked.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stages_step_checked.stage_order as {{ dbt.type_int() }}) as stage_order,
        stages_step_checked.reached_at,
        cast(stages_step_checked.source as {{ dbt.type_string() }}) as source,  -- noqa: RF04
        min(stages_step_checked.is_step_in_order) over (
            partition by stages_step_checked.conversation_id, stages_step_checked.funnel_name
            order by stages_step_checked.stage_order
            rows between unbounded preceding and current row
        ) = 1 as is_reached_in_order,
        case
            when
                stages_step_checked.is_previous_stage_reached
                and stages_step_checked.previous_reached_at <= stages_step_checked.reached_at
                then {{ funnel_seconds_between(
                    'stages_step_checked.previous_reached_at', 'stages_step_checked.reached_at'
                ) }}
        end as seconds_from_previous_stage,
        -- from the funnel's first stage (the support funnel's start to its
        -- resolution): both times known, this one not earlier; the stages
        -- between may be skipped
        case
            when
                not stages_step_checked.is_first_stage
                and stages_step_checked.first_stage_reached_at <= stages_step_checked.reached_at
                then {{ funnel_seconds_between(
                    'stages_step_checked.first_stage_reached_at', 'stages_step_checked.reached_at'
                ) }}
        end as seconds_from_first_stage
    from stages_step_checked
)

{{ select_with_conversation_date('stages_sequenced') }}
