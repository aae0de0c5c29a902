-- Every way each conversation reached each funnel stage, before they are
-- combined into one row per stage in int_conversation_stages_combined.
-- Incremental: a run recomputes every row of the conversations with newly
-- loaded events or new stage classifications (conversations_to_refresh_cte).

with

stage_rules as (
    select
        funnel_name,
        stage,
        reached_by,
        reached_by_value
    from {{ ref('stg_seeds__funnel_stages') }}
),

funnel_stages as (
    select
        funnel_name,
        stage,
        stage_order
    from {{ ref('int_funnel_stages_ordered') }}
),

events as (
    select
        conversation_id,
        event_id,
        event_type,
        event_at,
        funnel,
        stage
    from {{ ref('stg_events') }}
    where
        is_known_type
        and {{ touched('conversation_id') }}
),

conversation_flags as (
    select
        conversation_id,
        flag,
        reached_at
    from {{ ref('int_conversation_flags_unpivoted') }}
    where {{ touched('conversation_id') }}
),

conversation_markers as (
    select
        conversation_id,
        marker_name,
        reached_at
    from {{ ref('int_conversation_markers_evaluated') }}
    where {{ touched('conversation_id') }}
),

stage_classifications as (
    select
        conversation_id,
        funnel_name,
        stage,
        classifier,
        message_event_id
    from {{ ref('stg_stage_classifications') }}
    where
        is_reached
        and {{ touched('conversation_id') }}
),

conversations as (
    select conversation_id
    from {{ ref('int_conversations_summarized') }}
    where {{ touched('conversation_id') }}
),

reached_by_event_type as (
    select
        events.conversation_id,
        stage_rules.funnel_name,
        stage_rules.stage,
        min(events.event_at) as reached_at,
        'event_type' as reached_by,
        'event' as source  -- noqa: RF04
    from events
    inner join stage_rules
        on
            stage_rules.reached_by = 'event_type'
            and events.event_type = stage_rules.reached_by_value
    group by
        events.conversation_id,
        stage_rules.funnel_name,
        stage_rules.stage
),

reached_by_stage_reached_event as (
    -- counts for any (funnel, stage) of the seed, whatever its reached_by
    select
        events.conversation_id,
        funnel_stages.funnel_name,
        funnel_stages.stage,
        min(events.event_at) as reached_at,
        'stage_reached' as reached_by,
        'event' as source  -- noqa: RF04
    from events
    inner join funnel_stages
        on
            events.funnel = funnel_stages.funnel_name
            and events.stage = funnel_stages.stage
    where events.event_type = 'stage_reached'
    group by
        events.conversation_id,
        funnel_stages.funnel_name,
        funnel_stages.stage
),

reached_by_flag as (
    select
        conversation_flags.conversation_id,
        stage_rules.funnel_name,
        stage_rules.stage,
        min(conversation_flags.reached_at) as reached_at,
        'flag' as reached_by,
        'event' as source  -- noqa: RF04
    from conversation_flags
    inner join stage_rules
        on
            stage_rules.reached_by = 'flag'
            and conversation_flags.flag = stage_rules.reached_by_value
    group by
        conversation_flags.conversation_id,
        stage_rules.funnel_name,
        stage_rules.stage
),

reached_by_marker as (
    select
        conversation_markers.conversation_id,
        stage_rules.funnel_name,
        stage_rules.stage,
        min(conversation_markers.reached_at) as reached_at,
        'marker' as reached_by,
        'event' as source  -- noqa: RF04
    from conversation_markers
    inner join stage_rules
        on
            stage_rules.reached_by = 'marker'
            and conversation_markers.marker_name = stage_rules.reached_by_value
    group by
        conversation_markers.conversation_id,
        stage_rules.funnel_name,
        stage_rules.stage
),

-- reached at the time of the message the classifier names (contract v1.3);
-- no time when it names none, or a message that is not one of the
-- conversation's user or agent messages
reached_by_classifier as (
    select distinct
        stage_classifications.conversation_id,
        stage_classifications.funnel_name,
        stage_classifications.stage,
        cast(named_messages.event_at as {{ dbt.type_timestamp() }}) as reached_at,
        'classifier' as reached_by,
        stage_classifications.classifier as source  -- noqa: RF04
    from stage_classifications
    -- a classification of a conversation the warehouse does not know is ignored
    inner join conversations
        on stage_classifications.conversation_id = conversations.conversation_id
    left join events as named_messages
        on
            stage_classifications.conversation_id = named_messages.conversation_id
            and stage_classifications.message_event_id = named_messages.event_id
            and named_messages.event_type in ('user_message', 'agent_message')
    inner join stage_rules
        on
            stage_rules.reached_by = 'classifier'
            and stage_classifications.funnel_name = stage_rules.funnel_name
            and stage_classifications.stage = stage_rules.stage
),

reaches_unioned as (
    select * from reached_by_event_type
    union all
    select * from reached_by_stage_reached_event
    union all
    select * from reached_by_flag
    union all
    select * from reached_by_marker
    union all
    select * from reached_by_classifier
),

reaches_with_stage_order as (
    select
        reaches_unioned.conversation_id,
        reaches_unioned.funnel_name,
        reaches_unioned.stage,
        funnel_stages.stage_order,
        reaches_unioned.reached_at,
        reaches_unioned.reached_by,
        reaches_unioned.source
    from reaches_unioned
    inner join funnel_stages
        on
            reaches_unioned.funnel_name = funnel_stages.funnel_name
            and reaches_unioned.stage = funnel_stages.stage
)

select * from reaches_with_stage_order
