{#- One row per conversation, funnel and stage reached: every way it was
    reached (a conversation flag, an event type, a stage_reached event, a
    marker, the classifier; seeds/funnel_stages.csv says which counts for
    which stage) combined into one. An event (or a flag, a stage_reached
    event, a marker) beats the classifier: the source is 'event' and the time
    the earliest qualifying event's; a stage reached only by the classifier
    keeps the classifier's name and the time of the message it names (null
    when it names none). A flag's time is that of the
    earliest event making it true; `responded` is the first user_message
    strictly after the first agent_message. -#}
{{ config(
    unique_key=['conversation_id', 'funnel_name', 'stage'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

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
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        is_known_type
),

conversations as (
    select
        conversation_id,
        initialized_at,
        started_at,
        first_user_message_at,
        first_agent_message_at,
        completed_at,
        converted_at
    from {{ ref('fct_conversations') }}
    where
    {%- if is_incremental() %}
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        -- they all lie on the scope's days: Spark reads only those partitions
        and {{ on_scope_days('conversation_date', scope_days) }}
        and
    {%- endif %}
        -- read by seven parts of the query: Spark computes it once (evaluated_once)
        {{ evaluated_once() }}
),

responses as (
    -- the first user_message strictly after the first agent_message
    select
        conversations.conversation_id,
        min(user_messages.event_at) as responded_at
    from conversations
    inner join events as user_messages
        on conversations.conversation_id = user_messages.conversation_id
    where
        user_messages.event_type = 'user_message'
        and user_messages.event_at > conversations.first_agent_message_at
    group by conversations.conversation_id
),

-- the conversation flags a stage can be reached by, each with the time of
-- the earliest event that makes it true
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
),

conversation_markers as (
    select
        conversation_id,
        marker_name,
        reached_at
    from {{ ref('int_conversation_markers_evaluated') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
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
    {%- if is_incremental() %}
        and conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
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
    from flags_unpivoted as conversation_flags
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
),

stages_combined as (
    select
        reaches_with_stage_order.conversation_id,
        reaches_with_stage_order.funnel_name,
        reaches_with_stage_order.stage,
        reaches_with_stage_order.stage_order,
        case
            when max(case when reaches_with_stage_order.source = 'event' then 1 else 0 end) = 1
                then min(
                    case when reaches_with_stage_order.source = 'event' then reaches_with_stage_order.reached_at end
                )
            else min(reaches_with_stage_order.reached_at)
        end as reached_at,
        case
            when max(case when reaches_with_stage_order.source = 'event' then 1 else 0 end) = 1 then 'event'
            else min(reaches_with_stage_order.source)
        end as source  -- noqa: RF04
    from reaches_with_stage_order
    group by
        reaches_with_stage_order.conversation_id,
        reaches_with_stage_order.funnel_name,
        reaches_with_stage_order.stage,
        reaches_with_stage_order.stage_order
),

conversation_stages as (
    select
        cast(stages_combined.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(stages_combined.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stages_combined.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stages_combined.stage_order as {{ dbt.type_int() }}) as stage_order,
        cast(stages_combined.reached_at as {{ dbt.type_timestamp() }}) as reached_at,
        cast(stages_combined.source as {{ dbt.type_string() }}) as source  -- noqa: RF04
    from stages_combined
)

{{ select_with_conversation_date('conversation_stages') }}
