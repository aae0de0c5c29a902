-- One row per conversation, funnel and stage reached: the ways it was reached
-- (int_conversation_stage_reaches_unioned) combined into one. An event (or a
-- flag, a stage_reached event, a marker) beats the classifier: the source is
-- 'event' and the time the earliest qualifying event's; a stage reached only
-- by the classifier keeps the classifier's name and the time of the message
-- it names (null when it names none).
-- Incremental: a run recomputes every row of the conversations with newly
-- loaded events or new stage classifications (conversations_to_refresh_cte).

with

stage_reaches as (
    select
        conversation_id,
        funnel_name,
        stage,
        stage_order,
        reached_at,
        source
    from {{ ref('int_conversation_stage_reaches_unioned') }}
    where {{ touched('conversation_id') }}
),

stages_combined as (
    select
        stage_reaches.conversation_id,
        stage_reaches.funnel_name,
        stage_reaches.stage,
        stage_reaches.stage_order,
        case
            when max(case when stage_reaches.source = 'event' then 1 else 0 end) = 1
                then min(case when stage_reaches.source = 'event' then stage_reaches.reached_at end)
            else min(stage_reaches.reached_at)
        end as reached_at,
        case
            when max(case when stage_reaches.source = 'event' then 1 else 0 end) = 1 then 'event'
            else min(stage_reaches.source)
        end as source  -- noqa: RF04
    from stage_reaches
    group by
        stage_reaches.conversation_id,
        stage_reaches.funnel_name,
        stage_reaches.stage,
        stage_reaches.stage_order
),

conversation_stages as (
    select
        cast(stages_combined.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(stages_combined.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stages_combined.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stages_combined.stage_order as {{ dbt.type_int() }}) as stage_order,
        cast(stages_combined.reached_at as {{ dbt.type_timestamp() }}) as reached_at,
        cast(stages_combined.source as {{ dbt.type_string() }}) as source  -- noqa: RF04
    from stages_combined
)

select * from conversation_stages
