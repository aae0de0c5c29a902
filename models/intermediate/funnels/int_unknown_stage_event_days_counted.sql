{#- The partial funnel_unknown_stage_events sums: per day and (funnel,
    stage) absent from seeds/funnel_stages.csv, the stage_reached events of
    that day's conversations naming it. A conversation counts on its own
    day only, so distinct conversations add up across days. Replaced a
    whole conversation_date at a time: a run recomputes the days of the
    conversations with new events. -#}
{{ config(
    unique_key=['conversation_date', 'funnel_name', 'stage'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations as (
    select
        conversation_id,
        conversation_date
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

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
        and conversation_id in (select conversations.conversation_id from conversations)
),

funnel_stages as (
    select
        funnel_name,
        stage
    from {{ ref('int_funnel_stages_ordered') }}
),

unknown_stage_events as (
    select
        stage_reached_events.conversation_id,
        conversations.conversation_date,
        stage_reached_events.event_at,
        coalesce(stage_reached_events.funnel, '(missing)') as funnel_name,
        coalesce(stage_reached_events.stage, '(missing)') as stage  -- noqa: RF04
    from stage_reached_events
    inner join conversations
        on stage_reached_events.conversation_id = conversations.conversation_id
    left join funnel_stages
        on
            stage_reached_events.funnel = funnel_stages.funnel_name
            and stage_reached_events.stage = funnel_stages.stage
    where funnel_stages.funnel_name is null
),

unknown_stage_days_counted as (
    select
        cast(unknown_stage_events.conversation_date as {{ type_date() }}) as conversation_date,
        cast(unknown_stage_events.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(unknown_stage_events.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(count(*) as {{ dbt.type_bigint() }}) as events,
        cast(count(distinct unknown_stage_events.conversation_id) as {{ dbt.type_bigint() }}) as conversations,
        min(unknown_stage_events.event_at) as first_seen_at,
        max(unknown_stage_events.event_at) as last_seen_at
    from unknown_stage_events
    group by
        unknown_stage_events.conversation_date,
        unknown_stage_events.funnel_name,
        unknown_stage_events.stage
)

select * from unknown_stage_days_counted
