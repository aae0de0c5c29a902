-- Data-quality report: stage_reached events whose (funnel, stage) is not in
-- seeds/funnel_stages.csv. Funnel tables ignore them; add the stage to the
-- seed (or fix the sender) and they count on the next run.
with

stage_reached_events as (
    select
        conversation_id,
        event_at,
        funnel,
        stage
    from {{ ref('stg_events') }}
    where
        is_known_type
        and event_type = 'stage_reached'
),

funnel_stages as (
    select
        funnel_name,
        stage
    from {{ ref('int_funnel_stages_ordered') }}
),

unknown_stage_events as (
    select stage_reached_events.*
    from stage_reached_events
    left join funnel_stages
        on
            stage_reached_events.funnel = funnel_stages.funnel_name
            and stage_reached_events.stage = funnel_stages.stage
    where funnel_stages.funnel_name is null
),

unknown_stages_counted as (
    select
        cast(coalesce(unknown_stage_events.funnel, '(missing)') as {{ dbt.type_string() }}) as funnel_name,
        cast(
            coalesce(unknown_stage_events.stage, '(missing)') as {{ dbt.type_string() }}
        ) as stage,  -- noqa: RF04
        cast(count(*) as {{ dbt.type_bigint() }}) as events,
        cast(count(distinct unknown_stage_events.conversation_id) as {{ dbt.type_bigint() }}) as conversations,
        min(unknown_stage_events.event_at) as first_seen_at,
        max(unknown_stage_events.event_at) as last_seen_at
    from unknown_stage_events
    group by
        coalesce(unknown_stage_events.funnel, '(missing)'),
        coalesce(unknown_stage_events.stage, '(missing)')
)

select * from unknown_stages_counted
