{#- The histogram partial of funnel_summary's medians: per funnel, day, stage
    and 1% logarithmic bucket (log_bucket()), how many of that day's
    conversations took a time from the previous stage, and from the funnel's
    first stage, in the bucket, and the smallest and largest of those times.
    Replaced a whole conversation_date at a time: a run recomputes every day
    holding a conversation whose stages (events, the classifier) changed. -#}
{{ config(
    unique_key=['funnel_name', 'conversation_date', 'stage', 'seconds_bucket'],
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

stage_times as (
    select
        conversation_id,
        {{ conversation_date_on_spark() }}
        funnel_name,
        stage,
        seconds_from_previous_stage,
        seconds_from_first_stage
    from {{ ref('fct_conversation_stages') }}
    where
        (seconds_from_previous_stage is not null or seconds_from_first_stage is not null)
        and conversation_id in (select conversations.conversation_id from conversations)
),

-- one row per time: from the previous stage, from the first stage
stage_times_unpivoted as (
    select
        stage_times.conversation_id,
        {{ conversation_date_on_spark('stage_times') }}
        stage_times.funnel_name,
        stage_times.stage,
        'previous_stage' as measured_from,
        stage_times.seconds_from_previous_stage as seconds
    from stage_times
    where stage_times.seconds_from_previous_stage is not null

    union all

    select
        stage_times.conversation_id,
        {{ conversation_date_on_spark('stage_times') }}
        stage_times.funnel_name,
        stage_times.stage,
        'first_stage' as measured_from,
        stage_times.seconds_from_first_stage as seconds
    from stage_times
    where stage_times.seconds_from_first_stage is not null
),

stage_times_bucketed as (
    select
        stage_times_unpivoted.funnel_name,
        conversations.conversation_date,
        stage_times_unpivoted.stage,
        stage_times_unpivoted.measured_from,
        stage_times_unpivoted.seconds,
        {{ log_bucket('stage_times_unpivoted.seconds') }} as seconds_bucket
    from stage_times_unpivoted
    inner join conversations
        on {{ same_conversation('conversations', 'stage_times_unpivoted', 'conversations.conversation_date') }}
),

buckets_counted as (
    select
        cast(stage_times_bucketed.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stage_times_bucketed.conversation_date as {{ type_date() }}) as conversation_date,
        cast(stage_times_bucketed.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stage_times_bucketed.seconds_bucket as {{ dbt.type_int() }}) as seconds_bucket,
        cast(
            sum(case when stage_times_bucketed.measured_from = 'previous_stage' then 1 else 0 end)
            as {{ dbt.type_bigint() }}
        ) as timed_conversations,
        cast(
            min(case when stage_times_bucketed.measured_from = 'previous_stage' then stage_times_bucketed.seconds end)
            as {{ type_double() }}
        ) as min_seconds,
        cast(
            max(case when stage_times_bucketed.measured_from = 'previous_stage' then stage_times_bucketed.seconds end)
            as {{ type_double() }}
        ) as max_seconds,
        cast(
            sum(case when stage_times_bucketed.measured_from = 'first_stage' then 1 else 0 end)
            as {{ dbt.type_bigint() }}
        ) as timed_from_first_stage,
        cast(
            min(case when stage_times_bucketed.measured_from = 'first_stage' then stage_times_bucketed.seconds end)
            as {{ type_double() }}
        ) as min_seconds_from_first_stage,
        cast(
            max(case when stage_times_bucketed.measured_from = 'first_stage' then stage_times_bucketed.seconds end)
            as {{ type_double() }}
        ) as max_seconds_from_first_stage
    from stage_times_bucketed
    group by
        stage_times_bucketed.funnel_name,
        stage_times_bucketed.conversation_date,
        stage_times_bucketed.stage,
        stage_times_bucketed.seconds_bucket
)

select * from buckets_counted
