{{ config(
    unique_key=['conversation_id', 'funnel_name', 'stage'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- Every stage of a funnel for every conversation that reached at least one
-- of its stages, reached or not, with the in-order reading: a stage is
-- reached in order when it and every earlier stage are reached and each
-- stage's time is not later than the next one's (compared only where both
-- times are known); and the seconds from the previous stage and from the
-- funnel's first stage. The previous stage's time is read only here, not
-- stored: every reader takes the seconds.
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
        stage_order,
        stage_position,
        is_first_stage,
        is_last_stage
    from {{ ref('int_funnel_stages_ordered') }}
),

conversation_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        reached_at,
        source
    from {{ ref('int_conversation_stages_combined') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and conversation_date in {{ dates_listed(scope_days, 'event_date') }}
        {%- endif %}
    {%- endif %}
),

conversation_funnels as (
    select distinct
        conversation_stages.conversation_id,
        conversation_stages.funnel_name
    from conversation_stages
),

conversation_funnel_stages as (
    select
        conversation_funnels.conversation_id,
        funnel_stages.funnel_name,
        funnel_stages.stage,
        funnel_stages.stage_order,
        funnel_stages.stage_position,
        funnel_stages.is_first_stage,
        funnel_stages.is_last_stage,
        conversation_stages.conversation_id is not null as is_reached,
        conversation_stages.reached_at,
        conversation_stages.source
    from conversation_funnels
    inner join funnel_stages
        on conversation_funnels.funnel_name = funnel_stages.funnel_name
    left join conversation_stages
        on
            conversation_funnels.conversation_id = conversation_stages.conversation_id
            and funnel_stages.funnel_name = conversation_stages.funnel_name
            and funnel_stages.stage = conversation_stages.stage
),

stages_with_previous as (
    select
        conversation_funnel_stages.*,
        lag(conversation_funnel_stages.reached_at) over (
            partition by
                conversation_funnel_stages.conversation_id,
                conversation_funnel_stages.funnel_name
            order by conversation_funnel_stages.stage_order
        ) as previous_stage_reached_at,
        lag(conversation_funnel_stages.is_reached) over (
            partition by
                conversation_funnel_stages.conversation_id,
                conversation_funnel_stages.funnel_name
            order by conversation_funnel_stages.stage_order
        ) as is_previous_stage_reached,
        max(
            case
                when conversation_funnel_stages.is_first_stage then conversation_funnel_stages.reached_at
            end
        ) over (
            partition by
                conversation_funnel_stages.conversation_id,
                conversation_funnel_stages.funnel_name
        ) as first_stage_reached_at
    from conversation_funnel_stages
),

stages_step_checked as (
    select
        stages_with_previous.*,
        case
            when not stages_with_previous.is_reached then 0
            when stages_with_previous.is_first_stage then 1
            when not stages_with_previous.is_previous_stage_reached then 0
            when stages_with_previous.previous_stage_reached_at is null then 1
            when stages_with_previous.reached_at is null then 1
            when stages_with_previous.previous_stage_reached_at <= stages_with_previous.reached_at then 1
            else 0
        end as is_step_in_order
    from stages_with_previous
),

stages_sequenced as (
    select
        stages_step_checked.conversation_id,
        stages_step_checked.funnel_name,
        stages_step_checked.stage,
        stages_step_checked.stage_order,
        stages_step_checked.stage_position,
        stages_step_checked.is_first_stage,
        stages_step_checked.is_last_stage,
        stages_step_checked.is_reached,
        stages_step_checked.reached_at,
        stages_step_checked.source,
        min(stages_step_checked.is_step_in_order) over (
            partition by
                stages_step_checked.conversation_id,
                stages_step_checked.funnel_name
            order by stages_step_checked.stage_order
            rows between unbounded preceding and current row
        ) = 1 as is_reached_in_order,
        case
            when
                stages_step_checked.is_reached
                and not stages_step_checked.is_first_stage
                and stages_step_checked.is_previous_stage_reached
                and stages_step_checked.previous_stage_reached_at <= stages_step_checked.reached_at
                then {{ funnel_seconds_between(
                    'stages_step_checked.previous_stage_reached_at',
                    'stages_step_checked.reached_at'
                ) }}
        end as seconds_from_previous_stage,
        -- from the funnel's first stage (the support funnel's start to its
        -- resolution): both times known, this one not earlier; the stages
        -- between may be skipped
        case
            when
                stages_step_checked.is_reached
                and not stages_step_checked.is_first_stage
                and stages_step_checked.first_stage_reached_at <= stages_step_checked.reached_at
                then {{ funnel_seconds_between(
                    'stages_step_checked.first_stage_reached_at',
                    'stages_step_checked.reached_at'
                ) }}
        end as seconds_from_first_stage
    from stages_step_checked
)

{{ select_with_conversation_date('stages_sequenced') }}
