{#- One row per staged event of a conversation this run recomputes: the
    events of scope_conversations, read from stg_events once per run. The
    models keyed by conversation read these in their is_incremental() branch
    instead of deriving the same rows from the whole staged history in every
    CTE that reads events (a view is evaluated once per reference, on Spark
    and on DuckDB alike). Only the columns those models read. A build from
    nothing (no run recorded, no table yet) stores no row: every model then
    reads stg_events itself, and a copy of the whole history would only
    grow the warehouse file. Once a run has recorded where it ended, or the
    table exists (a first build that failed half-way, whose models are
    incremental on the next try), it holds every event of the scope. -#}
{%- set from_nothing = execute and load_relation(this) is none %}

with

conversations_in_scope as (
    select conversation_id from {{ ref('scope_conversations') }}
),

previous_run as (
    select previous_load_id from {{ ref('scope_run') }}
)

select
    stg_events.conversation_id,
    stg_events.event_id,
    stg_events.event_type,
    stg_events.is_known_type,
    stg_events.event_at,
    stg_events.user_id,
    stg_events.channel,
    stg_events.device,
    stg_events.source,
    stg_events.language,
    stg_events.environment,
    stg_events.page_url,
    stg_events.agent_id,
    stg_events.lead_score,
    stg_events.content,
    stg_events.turn,
    stg_events.intent,
    stg_events.sentiment,
    stg_events.model,
    stg_events.latency_ms,
    stg_events.input_tokens,
    stg_events.output_tokens,
    stg_events.tool_name,
    stg_events.topic,
    stg_events.reason,
    stg_events.rating,
    stg_events.funnel,
    stg_events.stage,
    stg_events.test_name,
    stg_events.variant,
    stg_events.button,
    stg_events.flow_name,
    stg_events.abandoned_at_turn,
    -- every property column: a marker rule may read any (funnel_marker_property_sql)
    stg_events.comment,
    stg_events.goal,
    stg_events.sender,
    stg_events.intent_confidence,
    stg_events.message_length,
    stg_events.response_length,
    stg_events.total_turns,
    stg_events.properties
from {{ ref('stg_events') }} as stg_events
where
    stg_events.conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    and (
        not {{ 'true' if from_nothing else 'false' }}
        or (select previous_run.previous_load_id from previous_run) is not null
    )
