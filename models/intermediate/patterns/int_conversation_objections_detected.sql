{{ config(
    unique_key=['conversation_id', 'objection'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- One row per conversation x objection raised: a user message whose
-- lower-cased content contains a match of one of the objection's lexicon
-- patterns (seeds/objection_lexicon.csv). Incremental: a run recomputes the
-- conversations with new events (a new message only adds objections or an
-- earlier first raising); a changed lexicon rebuilds every row (dbt's state
-- comparison: docs/incremental.md).

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

user_messages as (
    select
        event_id,
        conversation_id,
        event_at,
        turn,
        content
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        is_known_type
        and event_type = 'user_message'
        and content is not null
),

-- one row per message x objection, however many of its patterns match
messages_matched as (
    select distinct
        patterns_matched.event_id,
        patterns_matched.conversation_id,
        patterns_matched.event_at,
        patterns_matched.turn,
        patterns_matched.objection
    from (
        {{ lexicon_matches(
            'user_messages', 'lower(user_messages.content)',
            ['event_id', 'conversation_id', 'event_at', 'turn'],
            ref('objection_lexicon'), 'objection', 'pattern',
        ) }}
    ) as patterns_matched
),

objections_per_conversation as (
    select
        messages_matched.conversation_id,
        messages_matched.objection,
        min(messages_matched.event_at) as first_raised_at,
        {{ first_value_by('messages_matched.turn', 'messages_matched.event_at') }} as first_raised_turn,
        count(*) as messages_raising
    from messages_matched
    group by
        messages_matched.conversation_id,
        messages_matched.objection
)

{{ select_with_conversation_date('objections_per_conversation') }}
