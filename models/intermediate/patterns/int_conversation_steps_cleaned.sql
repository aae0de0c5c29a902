{{ config(
    unique_key=['conversation_id', 'step_number'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- One row per conversation x step of its path: each known event becomes a
-- token (`event_type`, or `event_type:detail` where the event carries the
-- detail that tells steps apart), the path_cleaning seed renames or drops
-- tokens (first matching rule wins), and consecutive equal tokens collapse
-- into one step; next_step is the step after it (null for the last one), and
-- is_first_occurrence marks where the token first appears in the path.
-- Incremental, keyed by conversation and step: a run
-- recomputes every step of the conversations with newly loaded events
-- (scope_conversations). New events never lower a conversation's
-- number of steps (an event added between two steps either joins one or
-- adds a boundary), so replacing the recomputed (conversation, step) rows
-- replaces every row that changed; a changed path_cleaning seed or a
-- re-mapped history rebuilds every row (dbt's state comparison: docs/incremental.md).

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

events as (
    select
        event_id,
        conversation_id,
        event_type,
        event_at,
        tool_name,
        intent,
        reason,
        flow_name,
        button
    from {{ events_in_scope if is_incremental() else staged_events }}
    -- unknown event types are staged for the record but take part in no metric
    where
        is_known_type
),

cleaning_rules as (
    select
        rule_order,
        regex,
        alias
    from {{ ref('path_cleaning') }}
),

events_tokenized as (
    select
        events.event_id,
        events.conversation_id,
        events.event_at,
        events.event_type
        || coalesce(
            ':' || case events.event_type
                when 'tool_called' then events.tool_name
                when 'user_message' then events.intent
                when 'handoff_requested' then events.reason
                when 'flow_started' then events.flow_name
                when 'flow_completed' then events.flow_name
                when 'flow_abandoned' then events.flow_name
                when 'button_clicked' then events.button
            end,
            ''
        ) as raw_step
    from events
),

distinct_tokens as (
    select distinct events_tokenized.raw_step
    from events_tokenized
),

-- The first rule (by rule_order) whose regex matches the token cleans it.
tokens_first_rule as (
    select
        distinct_tokens.raw_step,
        cleaning_rules.regex,
        cleaning_rules.alias
    from distinct_tokens
    inner join cleaning_rules
        on {{ regex_contains('distinct_tokens.raw_step', 'cleaning_rules.regex') }}
    qualify row_number() over (
        partition by distinct_tokens.raw_step
        order by cleaning_rules.rule_order
    ) = 1
),

tokens_cleaned as (
    select
        distinct_tokens.raw_step,
        case
            -- no rule matches: the token is kept as it is
            when tokens_first_rule.raw_step is null then distinct_tokens.raw_step
            -- an empty alias drops the step
            when tokens_first_rule.alias is null or tokens_first_rule.alias = '' then null
            else {{ regex_replace_all(
                'distinct_tokens.raw_step', 'tokens_first_rule.regex', 'tokens_first_rule.alias'
            ) }}
        end as step
    from distinct_tokens
    left join tokens_first_rule
        on distinct_tokens.raw_step = tokens_first_rule.raw_step
),

events_cleaned as (
    select
        events_tokenized.event_id,
        events_tokenized.conversation_id,
        events_tokenized.event_at,
        tokens_cleaned.step
    from events_tokenized
    inner join tokens_cleaned
        on events_tokenized.raw_step = tokens_cleaned.raw_step
    where tokens_cleaned.step is not null and tokens_cleaned.step != ''
),

-- One sort of the conversation's events gives each its previous token, its
-- position and the conversation's number of events (the windows share it).
events_ordered as (
    select
        events_cleaned.conversation_id,
        events_cleaned.event_at,
        events_cleaned.step,
        lag(events_cleaned.step) over (
            partition by events_cleaned.conversation_id
            order by events_cleaned.event_at, events_cleaned.event_id
        ) as previous_step,
        row_number() over (
            partition by events_cleaned.conversation_id
            order by events_cleaned.event_at, events_cleaned.event_id
        ) as event_number,
        count(*) over (
            partition by events_cleaned.conversation_id
            order by events_cleaned.event_at, events_cleaned.event_id
            rows between unbounded preceding and unbounded following
        ) as conversation_events
    from events_cleaned
),

-- A step starts where the token differs from the previous event's token; the
-- step is that event's token and lasts until the next step starts (or the
-- conversation ends). Collapsing the steps is then one sort of their starts,
-- not a running sum and a group by over every event.
steps_collapsed as (
    select
        events_ordered.conversation_id,
        cast(row_number() over (
            partition by events_ordered.conversation_id
            order by events_ordered.event_number
        ) as {{ dbt.type_int() }}) as step_number,
        events_ordered.step,
        events_ordered.event_at as step_started_at,
        coalesce(
            lead(events_ordered.event_number) over (
                partition by events_ordered.conversation_id
                order by events_ordered.event_number
            ),
            events_ordered.conversation_events + 1
        ) - events_ordered.event_number as events_in_step,
        lead(events_ordered.step) over (
            partition by events_ordered.conversation_id
            order by events_ordered.event_number
        ) as next_step
    from events_ordered
    where events_ordered.previous_step is null or events_ordered.previous_step != events_ordered.step
),

steps_first_occurrences as (
    select
        steps_collapsed.conversation_id,
        steps_collapsed.step_number,
        steps_collapsed.step,
        steps_collapsed.step_started_at,
        steps_collapsed.events_in_step,
        steps_collapsed.next_step,
        row_number() over (
            partition by steps_collapsed.conversation_id, steps_collapsed.step
            order by steps_collapsed.step_number
        ) = 1 as is_first_occurrence
    from steps_collapsed
)

{{ select_with_conversation_date('steps_first_occurrences') }}
