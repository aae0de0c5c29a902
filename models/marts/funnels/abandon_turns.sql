with

abandoned_conversations as (
    select
        conversation_id,
        abandoned_at_turn
    from {{ ref('int_conversations_summarized') }}
    where
        was_abandoned
        and abandoned_at_turn is not null
),

turns_counted as (
    select
        abandoned_conversations.abandoned_at_turn as turn,
        count(*) as conversations
    from abandoned_conversations
    group by abandoned_conversations.abandoned_at_turn
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
