-- One row per conversation with at least one feedback_received event: its
-- ratings scored 0..1 (positive 1.0, negative 0.0, a digit r in 1..5
-- (r - 1) / 4; any other rating is ignored) and summed for the satisfaction
-- score. Incremental: a run rescores the conversations with newly loaded
-- events (conversations_to_refresh_cte), replacing their rows.

with

feedback_events as (
    select
        conversation_id,
        rating
    from {{ ref('stg_events') }}
    -- unknown event types are staged for the record but take part in no metric
    where
        is_known_type
        and event_type = 'feedback_received'
        and {{ touched('conversation_id') }}
),

feedback_rated as (
    select
        feedback_events.conversation_id,
        case
            when lower(trim(feedback_events.rating)) = 'positive' then 1.0
            when lower(trim(feedback_events.rating)) = 'negative' then 0.0
            when trim(feedback_events.rating) in ('1', '2', '3', '4', '5')
                then (cast(trim(feedback_events.rating) as {{ type_double() }}) - 1.0) / 4.0
        end as rating_score
    from feedback_events
),

feedback_scored as (
    select
        feedback_rated.conversation_id,
        count(feedback_rated.rating_score) as feedback_signals,
        sum(feedback_rated.rating_score) as feedback_total,
        avg(feedback_rated.rating_score) as feedback_score
    from feedback_rated
    group by feedback_rated.conversation_id
)

select * from feedback_scored
