{#- One row per day this run recomputes: every day with an event of a
    conversation in scope_conversations. That includes the day a conversation
    belonged to before a late event moved its first event earlier (it still
    has an event that day), so a model of day partials replaces its old
    contribution there too. Each reason says whether a conversation of that
    day is in scope for it. -#}

with

conversations_in_scope as (
    select
        conversation_id,
        has_new_events,
        crossed_abandonment_window,
        crossed_conversion_window,
        has_new_classifier_output
    from {{ ref('scope_conversations') }}
    -- on Spark the scope also lists the other conversations of those days,
    -- with no reason (scope_conversations): the days are the same
    where
        has_new_events
        or crossed_abandonment_window
        or crossed_conversion_window
        or has_new_classifier_output
),

event_days as (
    select distinct
        conversation_id,
        cast(event_at as {{ type_date() }}) as event_date
    from {{ ref('stg_events') }}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
),

days_in_scope as (
    select
        event_days.event_date,
        count(*) as conversations,
        {{ dbt.bool_or('conversations_in_scope.has_new_events') }} as has_new_events,
        {{ dbt.bool_or('conversations_in_scope.crossed_abandonment_window') }} as crossed_abandonment_window,
        {{ dbt.bool_or('conversations_in_scope.crossed_conversion_window') }} as crossed_conversion_window,
        {{ dbt.bool_or('conversations_in_scope.has_new_classifier_output') }} as has_new_classifier_output
    from event_days
    inner join conversations_in_scope
        on event_days.conversation_id = conversations_in_scope.conversation_id
    group by event_days.event_date
)

select * from days_in_scope
