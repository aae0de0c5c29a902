{#- One row per conversation (known event types only): every per-conversation
    fact of the contract (attributes, flags, counts, abandonment, feedback,
    rephrases, satisfaction, outcome), read by the funnel, metric, pattern
    and experiment models. Replaced conversation by conversation for the
    conversations of scope_conversations: new events, and inferred
    abandonment, which compares a conversation's last event with the clock
    (scope_run). -#}
{{ config(
    unique_key='conversation_id',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

run as (
    select clock from {{ ref('scope_run') }}
),

user_messages_compared as (
    select
        conversation_id,
        is_rephrase
    from {{ ref('int_user_messages_compared') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
),

-- events and events_ordered are read by several CTEs below: computed for
-- each reader (each reads only its columns of the staged events) rather
-- than stored whole first with every message's text, which cost more than
-- the reads it saved
events as {{ cte_not_materialized() }} (
    select
        conversation_id,
        event_id,
        event_type,
        event_at,
        user_id,
        channel,
        device,
        source,
        language,
        environment,
        agent_id,
        content,
        rating,
        abandoned_at_turn
    from {{ events_in_scope if is_incremental() else staged_events }}
    -- unknown event types are staged for the record but take part in no metric
    where
        is_known_type
),

-- feedback ratings scored 0..1 (positive 1.0, negative 0.0, a digit r in
-- 1..5 (r - 1) / 4; any other rating is ignored), summed for the
-- satisfaction score
feedback_rated as (
    select
        events.conversation_id,
        case
            when lower(trim(events.rating)) = 'positive' then 1.0
            when lower(trim(events.rating)) = 'negative' then 0.0
            when trim(events.rating) in ('1', '2', '3', '4', '5')
                then (cast(trim(events.rating) as {{ type_double() }}) - 1.0) / 4.0
        end as rating_score
    from events
    where events.event_type = 'feedback_received'
),

feedback_scored as (
    select
        feedback_rated.conversation_id,
        count(feedback_rated.rating_score) as feedback_signals,
        sum(feedback_rated.rating_score) as feedback_total,
        avg(feedback_rated.rating_score) as feedback_score
    from feedback_rated
    group by feedback_rated.conversation_id
),

-- the contract's rephrase rule holds per message in int_user_messages_compared
rephrases_counted as (
    select
        user_messages_compared.conversation_id,
        count(case when user_messages_compared.is_rephrase then 1 end) as rephrase_count
    from user_messages_compared
    group by user_messages_compared.conversation_id
),

warehouse_clock as (
    select run.clock as newest_event_at
    from run
),

events_ordered as {{ cte_not_materialized() }} (
    select
        events.*,
        -- the events' order within a conversation, as one sortable value (a
        -- row_number() would sort all events first: 15 of 19 s at 10M)
        {{ sort_key(['events.event_at', 'events.event_id']) }} as event_order,
        events.event_type in ('conversation_started', 'interaction_initialized')
            as is_setup_event
    from events
),

conversations_aggregated as (
    select
        conversation_id,
        {{ first_value_by('user_id', 'event_order') }} as user_id,
        {{ first_value_by('channel', 'event_order') }} as channel,
        {{ first_value_by('case when is_setup_event then agent_id end', 'event_order') }}
            as agent_id,
        {{ first_value_by('case when is_setup_event then device end', 'event_order') }}
            as device,
        {{ first_value_by('case when is_setup_event then source end', 'event_order') }}
            as source,  -- noqa: RF04
        {{ first_value_by('case when is_setup_event then language end', 'event_order') }}
            as language,  -- noqa: RF04
        {{ first_value_by('case when is_setup_event then environment end', 'event_order') }}
            as environment,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        min(case when event_type = 'interaction_initialized' then event_at end) as initialized_at,
        min(
            case
                when event_type not in ('interaction_initialized', 'experiment_exposure')
                    then event_at
            end
        ) as started_at,
        min(case when event_type = 'user_message' then event_at end) as first_user_message_at,
        min(case when event_type = 'agent_message' then event_at end) as first_agent_message_at,
        min(case when event_type = 'conversation_completed' then event_at end) as completed_at,
        min(case when event_type = 'conversion' then event_at end) as converted_at,
        count(case when event_type = 'user_message' then 1 end) as user_turns,
        count(case when event_type = 'agent_message' then 1 end) as agent_messages,
        count(case when event_type = 'tool_called' then 1 end) as tool_calls,
        count(case when event_type = 'fallback_triggered' then 1 end) as fallback_count,
        count(case when event_type = 'handoff_requested' then 1 end) > 0 as had_handoff,
        count(case when event_type = 'conversation_abandoned' then 1 end) > 0
            as has_abandon_event
    from events_ordered
    group by conversation_id
),

-- With several abandon events, the first one's abandoned_at_turn counts.
first_abandon_events as (
    select
        events_ordered.conversation_id,
        events_ordered.abandoned_at_turn as first_abandon_event_turn
    from events_ordered
    where events_ordered.event_type = 'conversation_abandoned'
    qualify row_number() over (
        partition by events_ordered.conversation_id
        order by events_ordered.event_order
    ) = 1
),

last_user_messages as (
    select
        events_ordered.conversation_id,
        events_ordered.content as last_user_message
    from events_ordered
    where events_ordered.event_type = 'user_message'
    qualify row_number() over (
        partition by events_ordered.conversation_id
        order by events_ordered.event_order desc
    ) = 1
),

-- The first agent_message at or after the first user_message.
first_replies as (
    select
        conversations_aggregated.conversation_id,
        min(events.event_at) as first_reply_at
    from conversations_aggregated
    inner join events
        on
            conversations_aggregated.conversation_id = events.conversation_id
            and events.event_type = 'agent_message'
            and conversations_aggregated.first_user_message_at <= events.event_at
    group by conversations_aggregated.conversation_id
),

conversations_flagged as (
    select
        conversations_aggregated.*,
        cast(conversations_aggregated.first_event_at as {{ type_date() }}) as conversation_date,
        conversations_aggregated.initialized_at is not null as initialized,
        conversations_aggregated.started_at is not null as started,
        conversations_aggregated.user_turns > 0 as engaged,
        conversations_aggregated.completed_at is not null as was_completed,
        conversations_aggregated.converted_at is not null as converted,
        first_replies.first_reply_at,
        first_abandon_events.first_abandon_event_turn,
        last_user_messages.last_user_message,
        feedback_scored.feedback_score,
        coalesce(feedback_scored.feedback_signals, 0) as feedback_signals,
        coalesce(feedback_scored.feedback_total, 0) as feedback_total,
        coalesce(rephrases_counted.rephrase_count, 0) as rephrase_count,
        warehouse_clock.newest_event_at
    from conversations_aggregated
    cross join warehouse_clock
    left join first_replies
        on conversations_aggregated.conversation_id = first_replies.conversation_id
    left join feedback_scored
        on conversations_aggregated.conversation_id = feedback_scored.conversation_id
    left join rephrases_counted
        on conversations_aggregated.conversation_id = rephrases_counted.conversation_id
    left join first_abandon_events
        on conversations_aggregated.conversation_id = first_abandon_events.conversation_id
    left join last_user_messages
        on conversations_aggregated.conversation_id = last_user_messages.conversation_id
),

abandonment_inferred as (
    select
        conversations_flagged.*,
        conversations_flagged.has_abandon_event
        or (
            conversations_flagged.engaged
            and not conversations_flagged.was_completed
            and not conversations_flagged.had_handoff
            and not conversations_flagged.converted
            and conversations_flagged.last_event_at < {{ dbt.dateadd(
                'minute',
                -1 * var('abandon_after_minutes'),
                'conversations_flagged.newest_event_at'
            ) }}
        ) as was_abandoned
    from conversations_flagged
),

-- satisfaction_score: mean of the signals (feedback ratings, one outcome
-- signal, one length signal); 0.5 with no signal; null if never started.
satisfaction_signals as (
    select
        abandonment_inferred.*,
        case
            when abandonment_inferred.was_completed and abandonment_inferred.user_turns <= 3
                then 0.9
            when abandonment_inferred.had_handoff then 0.3
            when not abandonment_inferred.was_completed then 0.1
        end as outcome_signal,
        case
            when abandonment_inferred.user_turns > 2
                then greatest(0.0, 0.8 - 0.1 * greatest(0, abandonment_inferred.user_turns - 3))
        end as length_signal
    from abandonment_inferred
),

conversations_scored as (
    select
        satisfaction_signals.*,
        case
            when not satisfaction_signals.started then null
            when
                satisfaction_signals.feedback_signals = 0
                and satisfaction_signals.outcome_signal is null
                and satisfaction_signals.length_signal is null
                then 0.5
            else (
                satisfaction_signals.feedback_total
                + coalesce(satisfaction_signals.outcome_signal, 0.0)
                + coalesce(satisfaction_signals.length_signal, 0.0)
            ) / (
                satisfaction_signals.feedback_signals
                + case when satisfaction_signals.outcome_signal is null then 0 else 1 end
                + case when satisfaction_signals.length_signal is null then 0 else 1 end
            )
        end as satisfaction_score
    from satisfaction_signals
),

final as (
    select
        conversations_scored.conversation_id,
        conversations_scored.user_id,
        conversations_scored.channel,
        conversations_scored.agent_id,
        conversations_scored.device,
        conversations_scored.source,
        conversations_scored.language,
        conversations_scored.environment,
        conversations_scored.first_event_at,
        conversations_scored.conversation_date,
        conversations_scored.initialized,
        conversations_scored.started_at,
        conversations_scored.started,
        conversations_scored.last_event_at,
        cast({{ microseconds_between(
            'conversations_scored.started_at', 'conversations_scored.last_event_at'
        ) }} as {{ type_double() }}) / 1000000.0 as duration_seconds,
        conversations_scored.engaged,
        conversations_scored.user_turns,
        conversations_scored.agent_messages,
        conversations_scored.tool_calls,
        conversations_scored.fallback_count,
        conversations_scored.had_handoff,
        conversations_scored.was_completed,
        conversations_scored.was_abandoned,
        case
            when conversations_scored.was_abandoned
                then coalesce(
                    conversations_scored.first_abandon_event_turn,
                    conversations_scored.user_turns
                )
        end as abandoned_at_turn,
        conversations_scored.converted,
        conversations_scored.feedback_score,
        cast({{ microseconds_between(
            'conversations_scored.first_user_message_at',
            'conversations_scored.first_reply_at'
        ) }} as {{ type_double() }}) / 1000.0 as first_response_ms,
        conversations_scored.satisfaction_score,
        conversations_scored.rephrase_count,
        case
            when conversations_scored.converted then 'converted'
            when conversations_scored.had_handoff then 'escalated'
            when conversations_scored.was_completed then 'completed'
            when conversations_scored.was_abandoned then 'abandoned'
            when not conversations_scored.engaged then 'not_engaged'
            else 'in_progress'
        end as outcome,
        conversations_scored.initialized_at,
        conversations_scored.first_user_message_at,
        conversations_scored.first_agent_message_at,
        conversations_scored.completed_at,
        conversations_scored.converted_at,
        conversations_scored.last_user_message
    from conversations_scored
)

select * from final
