{#- The histogram partial of funnel_summary's median: per funnel, day, stage
    and 1% logarithmic bucket (log_bucket()), how many of that day's
    conversations took a time from the previous stage in the bucket, and
    the smallest and largest of those times. Replaced a whole
    conversation_date at a time: a run recomputes every day holding a
    conversation whose stages (events, the classifier) changed. -#}
{{ config(
    unique_key=['funnel_name', 'conversation_date', 'stage', 'seconds_bucket'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
) }}

with

days_in_scope as (
    select event_date from {{ ref('scope_days') }}
),

conversations as (
    select
        conversation_id,
        conversation_date
    from {{ ref('int_conversations_summarized') }}
    {%- if is_incremental() %}
    where conversation_date in (select days_in_scope.event_date from days_in_scope)
    {%- endif %}
),

stage_times as (
    select
        conversation_id,
        funnel_name,
        stage,
        seconds_from_previous_stage
    from {{ ref('int_conversation_stages_sequenced') }}
    where
        seconds_from_previous_stage is not null
        and conversation_id in (select conversations.conversation_id from conversations)
),

stage_times_bucketed as (
    select
        stage_times.funnel_name,
        conversations.conversation_date,
        stage_times.stage,
        stage_times.seconds_from_previous_stage,
        {{ log_bucket('stage_times.seconds_from_previous_stage') }} as seconds_bucket
    from stage_times
    inner join conversations
        on stage_times.conversation_id = conversations.conversation_id
),

buckets_counted as (
    select
        cast(stage_times_bucketed.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stage_times_bucketed.conversation_date as {{ type_date() }}) as conversation_date,
        cast(stage_times_bucketed.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stage_times_bucketed.seconds_bucket as {{ dbt.type_int() }}) as seconds_bucket,
        cast(count(*) as {{ dbt.type_bigint() }}) as timed_conversations,
        cast(min(stage_times_bucketed.seconds_from_previous_stage) as {{ type_double() }}) as min_seconds,
        cast(max(stage_times_bucketed.seconds_from_previous_stage) as {{ type_double() }}) as max_seconds
    from stage_times_bucketed
    group by
        stage_times_bucketed.funnel_name,
        stage_times_bucketed.conversation_date,
        stage_times_bucketed.stage,
        stage_times_bucketed.seconds_bucket
)

select * from buckets_counted
