{{ config(meta={'dagster': {'ref': {'name': 'timing_daily'}}}) }}

{#- Every conversation counts in exactly one hour of its day in
    timing_daily: per conversation day, the hours' conversations add up to
    fct_conversations' count, and timing_daily has no day fct_conversations
    lacks. Checked on the days the newest builds rewrote. -#}

with

conversation_days as (
    select
        fct_conversations.conversation_date,
        count(*) as conversations
    from {{ ref('fct_conversations') }} as fct_conversations
    where
        fct_conversations.conversation_date in (
            select scope_days.event_date from {{ ref('scope_days') }} as scope_days
        )
    group by fct_conversations.conversation_date
),

timing_days as (
    select
        timing_daily.conversation_date,
        sum(timing_daily.conversations) as conversations
    from {{ ref('timing_daily') }} as timing_daily
    where
        timing_daily.conversation_date in (
            select scope_days.event_date from {{ ref('scope_days') }} as scope_days
        )
    group by timing_daily.conversation_date
),

mismatches as (
    select
        coalesce(conversation_days.conversation_date, timing_days.conversation_date) as conversation_date,
        conversation_days.conversations as expected,
        timing_days.conversations as actual
    from conversation_days
    full outer join timing_days
        on conversation_days.conversation_date = timing_days.conversation_date
    where
        conversation_days.conversations is null
        or timing_days.conversations is null
        or conversation_days.conversations != timing_days.conversations
)

select * from mismatches
