{#- Per day and rating, the feedback_received events of the conversations of
    that day: the explicit ratings as given (a numeric 1..5, positive,
    negative), so that any period's mean rating on 1..5 is a small sum (GET
    /api/analytics/dashboard's avg_satisfaction_score). Replaced a whole
    conversation_date at a time: a run recomputes the days of the
    conversations with new events. -#}
{{ config(
    unique_key=['conversation_date', 'rating'],
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

feedback_events as (
    select
        conversation_id,
        rating
    from {{ ref('stg_events') }}
    where
        event_type = 'feedback_received'
        and is_known_type
        and conversation_id in (select conversations.conversation_id from conversations)
),

-- the ratings fct_conversations.feedback_score reads (any case, trimmed);
-- any other rating is ignored there and here
feedback_rated as (
    select
        feedback_events.conversation_id,
        case
            when lower(trim(feedback_events.rating)) in ('positive', 'negative')
                then lower(trim(feedback_events.rating))
            when trim(feedback_events.rating) in ('1', '2', '3', '4', '5')
                then trim(feedback_events.rating)
        end as rating
    from feedback_events
),

ratings_counted as (
    select
        cast(conversations.conversation_date as {{ type_date() }}) as conversation_date,
        cast(feedback_rated.rating as {{ dbt.type_string() }}) as rating,
        cast(
            case
                when feedback_rated.rating in ('1', '2', '3', '4', '5')
                    then cast(feedback_rated.rating as {{ dbt.type_int() }})
            end as {{ dbt.type_int() }}
        ) as rating_value,
        cast(count(*) as {{ dbt.type_bigint() }}) as feedback_events,
        cast(count(distinct feedback_rated.conversation_id) as {{ dbt.type_bigint() }}) as conversations
    from feedback_rated
    inner join conversations
        on feedback_rated.conversation_id = conversations.conversation_id
    where feedback_rated.rating is not null
    group by
        conversations.conversation_date,
        feedback_rated.rating
)

select * from ratings_counted
