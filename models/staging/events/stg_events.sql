{#- A view: the valid, first-delivered rows of base_events_parsed (the one
    stored copy of the events, which decides first delivery when it parses
    a load run), event types mapped. A reader's filter (a conversation, a
    load run, a day) reaches the base table's scan. When a seed or var the
    mapping reads changes (an alias added to seeds/event_type_aliases.csv,
    user_message_senders), the view maps every event anew and the models
    downstream rebuild (built whole: docs/incremental.md). -#}
{%- set sender_literals = [] -%}
{%- for sender in var('user_message_senders') -%}
    {%- do sender_literals.append(string_literal(sender)) -%}
{%- endfor -%}
{%- set user_message_senders = sender_literals | join(', ') -%}

with

events_parsed as (
    select
        event_id,
        conversation_id,
        user_id,
        raw_event_type,
        event_at,
        channel,
        properties,
        device,
        source,
        language,
        environment,
        page_url,
        agent_id,
        lead_score,
        content,
        turn,
        message_length,
        intent,
        intent_confidence,
        sentiment,
        model,
        latency_ms,
        input_tokens,
        output_tokens,
        response_length,
        tool_name,
        topic,
        reason,
        rating,
        comment,
        goal,
        funnel,
        stage,
        test_name,
        variant,
        button,
        flow_name,
        sender,
        total_turns,
        abandoned_at_turn,
        load_id,
        loaded_at,
        source_file,
        row_number
    from {{ ref('base_events_parsed') }}
    where is_first_delivery
),

event_type_aliases as (
    select
        alias,
        event_type,
        funnel,
        stage
    from {{ ref('stg_seeds__event_type_aliases') }}
),

event_types as (
    select event_type from {{ ref('event_types') }}
),

-- An alias may also assert a funnel stage (meeting_booked -> stage_reached,
-- sales / booked): the alias's funnel and stage win over the properties'.
events_aliased as (
    select
        events_parsed.*,
        coalesce(event_type_aliases.event_type, lower(events_parsed.raw_event_type))
            as aliased_event_type,
        coalesce(event_type_aliases.funnel, events_parsed.funnel) as aliased_funnel,
        coalesce(event_type_aliases.stage, events_parsed.stage) as aliased_stage
    from events_parsed
    left join event_type_aliases
        on lower(events_parsed.raw_event_type) = event_type_aliases.alias
),

-- A message the agent side reports (message_received, agent_message) is the
-- user's when its sender property names the user's side (var
-- user_message_senders); agent, bot, assistant, any other sender or none
-- keep agent_message.
events_typed as (
    select
        events_aliased.*,
        case
            when
                events_aliased.aliased_event_type = 'agent_message'
                and lower(trim(events_aliased.sender)) in ({{ user_message_senders }})
                then 'user_message'
            else events_aliased.aliased_event_type
        end as canonical_event_type
    from events_aliased
),

final as (
    select
        events_typed.event_id,
        events_typed.conversation_id,
        events_typed.user_id,
        events_typed.canonical_event_type as event_type,
        events_typed.raw_event_type,
        event_types.event_type is not null as is_known_type,
        events_typed.event_at,
        cast(events_typed.event_at as {{ type_date() }}) as event_date,
        events_typed.channel,
        events_typed.properties,
        events_typed.device,
        events_typed.source,
        events_typed.language,
        events_typed.environment,
        events_typed.page_url,
        events_typed.agent_id,
        events_typed.lead_score,
        events_typed.content,
        events_typed.turn,
        events_typed.message_length,
        events_typed.intent,
        events_typed.intent_confidence,
        events_typed.sentiment,
        events_typed.model,
        events_typed.latency_ms,
        events_typed.input_tokens,
        events_typed.output_tokens,
        events_typed.response_length,
        events_typed.tool_name,
        events_typed.topic,
        events_typed.reason,
        events_typed.rating,
        events_typed.comment,
        events_typed.goal,
        events_typed.aliased_funnel as funnel,
        events_typed.aliased_stage as stage,  -- noqa: RF04
        events_typed.test_name,
        events_typed.variant,
        events_typed.button,
        events_typed.flow_name,
        events_typed.sender,
        events_typed.total_turns,
        events_typed.abandoned_at_turn,
        events_typed.load_id,
        events_typed.loaded_at,
        events_typed.source_file,
        events_typed.row_number
    from events_typed
    left join event_types
        on events_typed.canonical_event_type = event_types.event_type
)

select * from final
