{#- The partial abandon_turns sums: per day and turn, the conversations of
    that day abandoned at that turn. Replaced a whole conversation_date at
    a time: a run recomputes the days of the conversations with new events
    and of those the moved clock carried across the abandonment window. -#}

with

abandoned_conversations as (
    select
        conversation_date,
        abandoned_at_turn
    from {{ ref('int_conversations_summarized') }}
    where
        was_abandoned
        and abandoned_at_turn is not null
        and {{ touched('conversation_date', 'day') }}
),

turn_days_counted as (
    select
        cast(abandoned_conversations.conversation_date as {{ type_date() }}) as conversation_date,
        cast(abandoned_conversations.abandoned_at_turn as {{ dbt.type_int() }}) as turn,
        cast(count(*) as {{ dbt.type_bigint() }}) as conversations
    from abandoned_conversations
    group by
        abandoned_conversations.conversation_date,
        abandoned_conversations.abandoned_at_turn
)

select * from turn_days_counted
