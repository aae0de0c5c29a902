{#- One row per conversation this run recomputes, with why. A conversation's
    rows in any model can change only when one of these holds since the last
    complete run (scope_run's previous position):
      has_new_events             it has an event of a load run after the
                                 covered one (late events come in a newer
                                 load run: no special case)
      crossed_abandonment_window the clock moved its last event past
                                 abandon_after_minutes (inferred abandonment
                                 compares it with the newest staged event)
      crossed_conversion_window  the clock moved past the end of its funnel
                                 conversion window
                                 (funnel_conversion_window_hours after its
                                 first event)
      has_new_classifier_output  the classifier wrote a stage, a sentiment,
                                 an embedding or a judgment of it
    A window's ends follow the comparison that flips: fct_conversations
    infers abandonment while last_event_at < clock - abandon window, so the
    flip interval is [previous clock, clock) moved back by the window;
    int_conversation_funnels_progressed keeps a window open while
    first_event_at + window > clock, so it is (previous clock, clock]. Both
    are empty when the clock has not moved: a run with nothing new has an
    empty scope. In a warehouse no run has covered yet, every conversation
    has new events. On Spark, where models are replaced by whole
    conversation_date partitions, every conversation of a day such a
    conversation has an event on is recomputed too, with every reason false
    (scope_conversations_of_whole_days). -#}
{%- set abandon_minutes = var('abandon_after_minutes') %}
{%- set window_minutes = 60 * var('funnel_conversion_window_hours') %}

with

run as (
    select
        previous_load_id,
        previous_clock,
        clock,
        previous_classified_through
    from {{ ref('scope_run') }}
),

lifecycle as (
    select
        conversation_id,
        first_event_at,
        last_event_at,
        last_load_id,
        conversation_date
    from {{ ref('scope_conversation_lifecycle') }}
),

classified_conversations as (
    select stage_classifications.conversation_id
    from {{ source('classification', 'stage_classifications') }} as stage_classifications
    cross join run
    -- every output is new while no run has covered one
    where coalesce(stage_classifications.classified_at > run.previous_classified_through, true)
    union
    select message_sentiment.conversation_id
    from {{ source('classification', 'message_sentiment') }} as message_sentiment
    cross join run
    -- every output is new while no run has covered one
    where coalesce(message_sentiment.scored_at > run.previous_classified_through, true)
    union
    select message_embeddings.conversation_id
    from {{ source('classification', 'message_embeddings') }} as message_embeddings
    cross join run
    -- every output is new while no run has covered one
    where coalesce(message_embeddings.embedded_at > run.previous_classified_through, true)
    union
    select conversation_judgments.conversation_id
    from {{ source('classification', 'conversation_judgments') }} as conversation_judgments
    cross join run
    -- every output is new while no run has covered one
    where coalesce(conversation_judgments.judged_at > run.previous_classified_through, true)
),

reasons as (
    select
        lifecycle.conversation_id,
        coalesce(lifecycle.last_load_id > run.previous_load_id, true) as has_new_events,
        coalesce(
            lifecycle.last_event_at >= {{ dbt.dateadd('minute', -1 * abandon_minutes, 'run.previous_clock') }}
            and lifecycle.last_event_at < {{ dbt.dateadd('minute', -1 * abandon_minutes, 'run.clock') }},
            false
        ) as crossed_abandonment_window,
        coalesce(
            lifecycle.first_event_at > {{ dbt.dateadd('minute', -1 * window_minutes, 'run.previous_clock') }}
            and lifecycle.first_event_at <= {{ dbt.dateadd('minute', -1 * window_minutes, 'run.clock') }},
            false
        ) as crossed_conversion_window,
        classified_conversations.conversation_id is not null as has_new_classifier_output
    from lifecycle
    cross join run
    left join classified_conversations
        on lifecycle.conversation_id = classified_conversations.conversation_id
),

conversations_with_a_reason as (
    select *
    from reasons
    where
        has_new_events
        or crossed_abandonment_window
        or crossed_conversion_window
        or has_new_classifier_output
),

conversations_in_scope as (
    {{ scope_conversations_of_whole_days('conversations_with_a_reason', 'lifecycle') }}
)

select * from conversations_in_scope
