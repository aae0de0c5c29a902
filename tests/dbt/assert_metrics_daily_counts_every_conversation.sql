{{ config(meta={'dagster': {'ref': {'name': 'metrics_daily'}}}) }}

{#- Every conversation day of fct_conversations has its conversations/all row
    in metrics_daily with the right count, and metrics_daily has no day that
    fct_conversations lacks: catches an incremental run that skipped or kept
    a stale day. Checked on the days this run recomputed (scope_days, a moved
    conversation's old day included). -#}

with

days_in_scope as (
    select event_date from {{ ref('scope_days') }}
),

conversation_days as (
    select
        fct_conversations.conversation_date,
        count(*) as conversations
    from {{ ref('fct_conversations') }} as fct_conversations
    where fct_conversations.conversation_date in (select days_in_scope.event_date from days_in_scope)
    group by fct_conversations.conversation_date
),

metric_days as (
    select
        metrics_daily.metric_date,
        metrics_daily.value as conversations
    from {{ ref('metrics_daily') }} as metrics_daily
    where
        metrics_daily.metric_name = 'conversations'
        and metrics_daily.segment_type = 'all'
        and metrics_daily.metric_date in (select days_in_scope.event_date from days_in_scope)
),

every_day_ever as (
    select distinct metrics_daily.metric_date
    from {{ ref('metrics_daily') }} as metrics_daily
    where metrics_daily.metric_date in (select days_in_scope.event_date from days_in_scope)
),

mismatches as (
    select
        conversation_days.conversation_date,
        conversation_days.conversations as expected,
        metric_days.conversations as actual
    from conversation_days
    left join metric_days
        on conversation_days.conversation_date = metric_days.metric_date
    where metric_days.conversations is null or metric_days.conversations != conversation_days.conversations
    union all
    select
        every_day_ever.metric_date as conversation_date,
        null as expected,
        null as actual
    from every_day_ever
    left join conversation_days
        on every_day_ever.metric_date = conversation_days.conversation_date
    where conversation_days.conversation_date is null
)

select * from mismatches
