-- funnel_summary for the conversations of each day on: the rows the
-- `convo-warehouse funnel --since DATE` command prints. Counts are summed from
-- the same daily partials as funnel_summary and rated by the same macros.
{{ config(materialized='view') }}
with

funnel_stages as (
    select
        funnel_name,
        stage,
        stage_order,
        previous_stage,
        is_first_stage
    from {{ ref('int_funnel_stages_ordered') }}
),

stages_by_date as (
    select
        funnel_name,
        stage,
        conversation_date,
        reached,
        reached_in_order
    from {{ ref('int_funnel_stage_days_counted') }}
),

conversations_by_date as (
    select
        conversation_date,
        conversations
    from {{ ref('int_conversation_days_counted') }}
),

start_dates as (
    select
        conversations_by_date.conversation_date as start_date,
        sum(conversations_by_date.conversations) over (
            order by conversations_by_date.conversation_date desc
            rows between unbounded preceding and current row
        ) as all_conversations
    from conversations_by_date
),

-- every stage on every start date, with that day's counts (0 when none)
stages_on_start_dates as (
    select
        funnel_stages.funnel_name,
        funnel_stages.stage,
        funnel_stages.stage_order,
        funnel_stages.previous_stage,
        funnel_stages.is_first_stage,
        start_dates.start_date,
        start_dates.all_conversations,
        coalesce(stages_by_date.reached, 0) as reached_on_date,
        coalesce(stages_by_date.reached_in_order, 0) as reached_in_order_on_date
    from funnel_stages
    cross join start_dates
    left join stages_by_date
        on
            funnel_stages.funnel_name = stages_by_date.funnel_name
            and funnel_stages.stage = stages_by_date.stage
            and start_dates.start_date = stages_by_date.conversation_date
),

stages_from_start_date as (
    select
        stages_on_start_dates.funnel_name,
        stages_on_start_dates.stage,
        stages_on_start_dates.stage_order,
        stages_on_start_dates.previous_stage,
        stages_on_start_dates.is_first_stage,
        stages_on_start_dates.start_date,
        stages_on_start_dates.all_conversations,
        sum(stages_on_start_dates.reached_on_date) over (
            partition by stages_on_start_dates.funnel_name, stages_on_start_dates.stage
            order by stages_on_start_dates.start_date desc
            rows between unbounded preceding and current row
        ) as reached,
        sum(stages_on_start_dates.reached_in_order_on_date) over (
            partition by stages_on_start_dates.funnel_name, stages_on_start_dates.stage
            order by stages_on_start_dates.start_date desc
            rows between unbounded preceding and current row
        ) as reached_in_order
    from stages_on_start_dates
),

stages_with_neighbours as (
    select
        stages_from_start_date.*,
        {{ funnel_stage_neighbours('stages_from_start_date', ['funnel_name', 'start_date']) }}
    from stages_from_start_date
),

stages_rated as (
    select
        stages_with_neighbours.*,
        {{ funnel_stage_rates('stages_with_neighbours') }}
    from stages_with_neighbours
),

funnel_summary_since as (
    select
        cast(stages_rated.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stages_rated.start_date as date) as start_date,
        cast(stages_rated.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stages_rated.stage_order as {{ dbt.type_int() }}) as stage_order,
        cast(stages_rated.previous_stage as {{ dbt.type_string() }}) as previous_stage,
        cast(stages_rated.all_conversations as {{ dbt.type_bigint() }}) as all_conversations,
        cast(stages_rated.reached as {{ dbt.type_bigint() }}) as reached,
        cast(stages_rated.reached_in_order as {{ dbt.type_bigint() }}) as reached_in_order,
        cast(stages_rated.conversion_rate as {{ type_double() }}) as conversion_rate,
        cast(stages_rated.conversion_from_start as {{ type_double() }}) as conversion_from_start,
        cast(stages_rated.drop_off as {{ dbt.type_bigint() }}) as drop_off,
        cast(stages_rated.drop_off_rate as {{ type_double() }}) as drop_off_rate,
        stages_rated.is_major_drop_off,
        stages_rated.major_drop_off_threshold,
        cast(stages_rated.conversion_rate_in_order as {{ type_double() }}) as conversion_rate_in_order,
        cast(stages_rated.drop_off_in_order as {{ dbt.type_bigint() }}) as drop_off_in_order
    from stages_rated
)

select * from funnel_summary_since
