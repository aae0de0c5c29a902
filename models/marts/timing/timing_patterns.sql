-- The daily partials summed by weekday and hour: small whatever the history.
-- Rates are summed numerators over summed denominators, never averages of
-- the days' rates.
{{ config(materialized='view') }}

{%- set double = type_double() %}
with

hour_days as (
    select
        weekday,
        hour_of_day,
        conversations,
        initialized_conversations,
        interacted_conversations,
        started_conversations,
        engaged_conversations,
        completed_conversations
    from {{ ref('timing_daily') }}
),

hours_summed as (
    select
        hour_days.weekday,
        hour_days.hour_of_day,
        sum(hour_days.conversations) as conversations,
        sum(hour_days.initialized_conversations) as initialized_conversations,
        sum(hour_days.interacted_conversations) as interacted_conversations,
        sum(hour_days.started_conversations) as started_conversations,
        sum(hour_days.engaged_conversations) as engaged_conversations,
        sum(hour_days.completed_conversations) as completed_conversations
    from hour_days
    group by
        hour_days.weekday,
        hour_days.hour_of_day
),

hours_rated as (
    select
        cast(hours_summed.weekday as {{ dbt.type_int() }}) as weekday,  -- noqa: RF04
        cast(
            case hours_summed.weekday
                when 1 then 'Monday'
                when 2 then 'Tuesday'
                when 3 then 'Wednesday'
                when 4 then 'Thursday'
                when 5 then 'Friday'
                when 6 then 'Saturday'
                when 7 then 'Sunday'
            end as {{ dbt.type_string() }}
        ) as weekday_name,
        cast(hours_summed.hour_of_day as {{ dbt.type_int() }}) as hour_of_day,
        cast(hours_summed.conversations as {{ dbt.type_bigint() }}) as conversations,
        cast(hours_summed.initialized_conversations as {{ dbt.type_bigint() }}) as initialized_conversations,
        cast(hours_summed.interacted_conversations as {{ dbt.type_bigint() }}) as interacted_conversations,
        cast(hours_summed.started_conversations as {{ dbt.type_bigint() }}) as started_conversations,
        cast(hours_summed.engaged_conversations as {{ dbt.type_bigint() }}) as engaged_conversations,
        cast(hours_summed.completed_conversations as {{ dbt.type_bigint() }}) as completed_conversations,
        cast(
            cast(hours_summed.interacted_conversations as {{ double }})
            / nullif(hours_summed.initialized_conversations, 0) as {{ double }}
        ) as interaction_rate,
        cast(
            cast(hours_summed.engaged_conversations as {{ double }})
            / nullif(hours_summed.started_conversations, 0) as {{ double }}
        ) as engagement_rate,
        cast(
            cast(hours_summed.completed_conversations as {{ double }})
            / nullif(hours_summed.started_conversations, 0) as {{ double }}
        ) as completion_rate
    from hours_summed
)

select * from hours_rated
