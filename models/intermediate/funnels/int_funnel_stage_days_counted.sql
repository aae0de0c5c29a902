{#- The partial funnel_summary sums: per funnel, day and stage, what the
    conversations of that day contributed. Replaced a whole
    conversation_date at a time: a run recomputes every day holding a
    conversation whose stages (events, the classifier), outcome (the
    abandonment clock) or conversion window changed. -#}
{{ config(
    unique_key=['funnel_name', 'conversation_date', 'stage'],
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
        conversation_date,
        outcome
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

conversation_stages as (
    select
        conversation_id,
        {{ conversation_date_on_spark() }}
        funnel_name,
        stage,
        is_reached_in_order,
        seconds_from_previous_stage
    from {{ ref('fct_conversation_stages') }}
    where conversation_id in (select conversations.conversation_id from conversations)
),

funnel_stages as (
    select
        funnel_name,
        stage
    from {{ ref('int_funnel_stages_ordered') }}
),

funnel_progress as (
    select
        conversation_id,
        {{ conversation_date_on_spark() }}
        funnel_name,
        last_stage,
        has_reached_last_stage,
        is_window_open
    from {{ ref('int_conversation_funnels_progressed') }}
    where conversation_id in (select conversations.conversation_id from conversations)
),

stages_counted as (
    select
        conversation_stages.funnel_name,
        conversations.conversation_date,
        conversation_stages.stage,
        count(*) as reached,
        sum(case when conversation_stages.is_reached_in_order then 1 else 0 end) as reached_in_order,
        0 as entered,
        count(conversation_stages.seconds_from_previous_stage) as timed_conversations,
        {{ exact_sum_whole('conversation_stages.seconds_from_previous_stage') }}
            as seconds_from_previous_stage_whole,
        {{ exact_sum_fraction('conversation_stages.seconds_from_previous_stage') }}
            as seconds_from_previous_stage_fraction,
        0 as dropped_here,
        0 as window_open_here
    from conversation_stages
    inner join conversations
        on {{ same_conversation('conversations', 'conversation_stages', 'conversations.conversation_date') }}
    group by
        conversation_stages.funnel_name,
        conversations.conversation_date,
        conversation_stages.stage
),

-- every stage of each funnel a conversation entered, reached or not: each
-- stage's population that day
entries_counted as (
    select
        funnel_progress.funnel_name,
        conversations.conversation_date,
        funnel_stages.stage,
        0 as reached,
        0 as reached_in_order,
        count(*) as entered,
        0 as timed_conversations,
        cast(null as decimal(38, 0)) as seconds_from_previous_stage_whole,
        cast(null as decimal(38, 18)) as seconds_from_previous_stage_fraction,
        0 as dropped_here,
        0 as window_open_here
    from funnel_progress
    inner join conversations
        on {{ same_conversation('conversations', 'funnel_progress', 'conversations.conversation_date') }}
    inner join funnel_stages
        on funnel_progress.funnel_name = funnel_stages.funnel_name
    group by
        funnel_progress.funnel_name,
        conversations.conversation_date,
        funnel_stages.stage
),

-- the conversations that stopped at a stage: funnel_dropoffs' rows
stops_counted as (
    select
        funnel_progress.funnel_name,
        conversations.conversation_date,
        funnel_progress.last_stage as stage,  -- noqa: RF04
        0 as reached,
        0 as reached_in_order,
        0 as entered,
        0 as timed_conversations,
        cast(null as decimal(38, 0)) as seconds_from_previous_stage_whole,
        cast(null as decimal(38, 18)) as seconds_from_previous_stage_fraction,
        sum(case when funnel_progress.is_window_open then 0 else 1 end) as dropped_here,
        sum(case when funnel_progress.is_window_open then 1 else 0 end) as window_open_here
    from funnel_progress
    inner join conversations
        on {{ same_conversation('conversations', 'funnel_progress', 'conversations.conversation_date') }}
    where {{ funnel_has_stopped('funnel_progress', 'conversations') }}
    group by
        funnel_progress.funnel_name,
        conversations.conversation_date,
        funnel_progress.last_stage
),

stage_days_counted as (
    select
        cast(counts.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(counts.conversation_date as {{ type_date() }}) as conversation_date,
        cast(counts.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(sum(counts.reached) as {{ dbt.type_bigint() }}) as reached,
        cast(sum(counts.reached_in_order) as {{ dbt.type_bigint() }}) as reached_in_order,
        cast(sum(counts.entered) as {{ dbt.type_bigint() }}) as entered,
        cast(sum(counts.timed_conversations) as {{ dbt.type_bigint() }}) as timed_conversations,
        cast(sum(counts.seconds_from_previous_stage_whole) as decimal(38, 0))
            as seconds_from_previous_stage_whole,
        cast(sum(counts.seconds_from_previous_stage_fraction) as decimal(38, 18))
            as seconds_from_previous_stage_fraction,
        cast(sum(counts.dropped_here) as {{ dbt.type_bigint() }}) as dropped_here,
        cast(sum(counts.window_open_here) as {{ dbt.type_bigint() }}) as window_open_here
    from (
        select * from stages_counted
        union all
        select * from entries_counted
        union all
        select * from stops_counted
    ) as counts
    group by
        counts.funnel_name,
        counts.conversation_date,
        counts.stage
)

select * from stage_days_counted
