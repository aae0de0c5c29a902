-- One row per conversation with at least two user messages: how many
-- consecutive pairs of them (by timestamp, then event_id) are rephrases, i.e.
-- their lower-cased word sets have a Jaccard similarity of at least
-- var('rephrase_jaccard_threshold'); a pair with an empty word set never is.
-- Incremental: a run recounts the conversations with newly loaded events
-- (conversations_to_refresh_cte), replacing their rows.

with

user_messages as (
    select
        conversation_id,
        event_id,
        event_at,
        content
    from {{ ref('stg_events') }}
    -- unknown event types are staged for the record but take part in no metric
    where
        is_known_type
        and event_type = 'user_message'
        and {{ touched('conversation_id') }}
),

user_message_words as (
    select
        user_messages.conversation_id,
        {{ word_set('user_messages.content') }} as words,
        row_number() over (
            partition by user_messages.conversation_id
            order by user_messages.event_at, user_messages.event_id
        ) as message_sequence
    from user_messages
),

consecutive_messages_compared as (
    select
        later.conversation_id,
        {{ list_length('earlier.words') }} > 0
        and {{ list_length('later.words') }} > 0
        and {{ jaccard_similarity('earlier.words', 'later.words') }}
        >= {{ var('rephrase_jaccard_threshold') }} as is_rephrase
    from user_message_words as later
    inner join user_message_words as earlier
        on
            later.conversation_id = earlier.conversation_id
            and later.message_sequence = earlier.message_sequence + 1
),

rephrases_counted as (
    select
        consecutive_messages_compared.conversation_id,
        count(case when consecutive_messages_compared.is_rephrase then 1 end) as rephrase_count
    from consecutive_messages_compared
    group by consecutive_messages_compared.conversation_id
)

select * from rephrases_counted
