-- One row per conversation x step of its path: each known event becomes a
-- token (`event_type`, or `event_type:detail` where the event carries the
-- detail that tells steps apart), the path_cleaning seed renames or drops
-- tokens (first matching rule wins), and consecutive equal tokens collapse
-- into one step; next_step is the step after it (null for the last one), and
-- is_first_occurrence marks where the token first appears in the path.
-- Incremental, keyed by conversation and step: a run
-- recomputes every step of the conversations with newly loaded events
-- (conversations_to_refresh_cte). New events never lower a conversation's
-- number of steps (an event added between two steps either joins one or
-- adds a boundary), so replacing the recomputed (conversation, step) rows
-- replaces every row that changed; a changed path_cleaning seed or a
-- re-mapped history rebuilds every row (the watermark's fingerprint).

with

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
    from {{ ref('stg_events') }}
    -- unknown event types are staged for the record but take part in no metric
    where
        is_known_type
        and {{ touched('conversation_id') }}
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

events_compared_with_previous as (
    select
        events_cleaned.*,
        lag(events_cleaned.step) over (
            partition by events_cleaned.conversation_id
            order by events_cleaned.event_at, events_cleaned.event_id
        ) as previous_step
    from events_cleaned
),

-- A step starts where the token differs from the previous event's token.
step_starts as (
    select
        events_compared_with_previous.*,
        case
            when
                events_compared_with_previous.previous_step is null
                or events_compared_with_previous.previous_step != events_compared_with_previous.step
                then 1
            else 0
        end as is_step_start
    from events_compared_with_previous
),

events_numbered as (
    select
        step_starts.*,
        -- an int: DuckDB's sum of ints is a 128-bit integer, whose column
        -- scanned 20x slower than this one (2 s per read of 8M steps)
        cast(sum(step_starts.is_step_start) over (
            partition by step_starts.conversation_id
            order by step_starts.event_at, step_starts.event_id
            rows between unbounded preceding and current row
        ) as {{ dbt.type_int() }}) as step_number
    from step_starts
),

steps_collapsed as (
    select
        events_numbered.conversation_id,
        events_numbered.step_number,
        min(events_numbered.step) as step,
        min(events_numbered.event_at) as step_started_at,
        count(*) as events_in_step
    from events_numbered
    group by
        events_numbered.conversation_id,
        events_numbered.step_number
),

steps_with_next as (
    select
        steps_collapsed.conversation_id,
        steps_collapsed.step_number,
        steps_collapsed.step,
        steps_collapsed.step_started_at,
        steps_collapsed.events_in_step,
        lead(steps_collapsed.step) over (
            partition by steps_collapsed.conversation_id
            order by steps_collapsed.step_number
        ) as next_step,
        row_number() over (
            partition by steps_collapsed.conversation_id, steps_collapsed.step
            order by steps_collapsed.step_number
        ) = 1 as is_first_occurrence
    from steps_collapsed
)

select * from steps_with_next
