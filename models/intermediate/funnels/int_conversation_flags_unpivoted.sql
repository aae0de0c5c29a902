-- The conversation flags a funnel stage can be reached by
-- (seeds/funnel_stages.csv, reached_by = flag), each with the time of the
-- earliest event that makes it true. Incremental: a run recomputes every row
-- of the conversations with newly loaded events.

with

conversations as (
    select
        conversation_id,
        initialized_at,
        started_at,
        first_user_message_at,
        first_agent_message_at,
        completed_at,
        converted_at
    from {{ ref('int_conversations_summarized') }}
    where {{ touched('conversation_id') }}
),

user_messages as (
    select
        conversation_id,
        event_at
    from {{ ref('stg_events') }}
    where
        is_known_type
        and event_type = 'user_message'
        and {{ touched('conversation_id') }}
),

responses as (
    -- the first user_message strictly after the first agent_message
    select
        conversations.conversation_id,
        min(user_messages.event_at) as responded_at
    from conversations
    inner join user_messages
        on conversations.conversation_id = user_messages.conversation_id
    where user_messages.event_at > conversations.first_agent_message_at
    group by conversations.conversation_id
),

flags_unpivoted as (
    select
        conversation_id,
        'initialized' as flag,
        initialized_at as reached_at
    from conversations
    where initialized_at is not null

    union all

    select
        conversation_id,
        'started' as flag,
        started_at as reached_at
    from conversations
    where started_at is not null

    union all

    select
        conversation_id,
        'engaged' as flag,
        first_user_message_at as reached_at
    from conversations
    where first_user_message_at is not null

    union all

    select
        conversation_id,
        'responded' as flag,
        responded_at as reached_at
    from responses

    union all

    select
        conversation_id,
        'completed' as flag,
        completed_at as reached_at
    from conversations
    where completed_at is not null

    union all

    select
        conversation_id,
        'converted' as flag,
        converted_at as reached_at
    from conversations
    where converted_at is not null
)

select * from flags_unpivoted
