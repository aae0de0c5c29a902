-- The daily partials summed: small whatever the history.
{{ config(materialized='view') }}
with

turn_days as (
    select
        turn,
        conversations
    from {{ ref('abandon_turn_daily') }}
),

turns_counted as (
    select
        turn_days.turn,
        sum(turn_days.conversations) as conversations
    from turn_days
    group by turn_days.turn
),

turns_shared as (
    select
        cast(turns_counted.turn as {{ dbt.type_int() }}) as turn,
        cast(turns_counted.conversations as {{ dbt.type_bigint() }}) as conversations,
        cast(
            cast(turns_counted.conversations as {{ type_double() }})
            / sum(turns_counted.conversations) over ()
            as {{ type_double() }}
        ) as share,  -- noqa: RF04
        cast(
            cast(
                sum(turns_counted.conversations) over (
                    order by turns_counted.turn
                    rows between unbounded preceding and current row
                ) as {{ type_double() }}
            )
            / sum(turns_counted.conversations) over ()
            as {{ type_double() }}
        ) as cumulative_share
    from turns_counted
)

select * from turns_shared
