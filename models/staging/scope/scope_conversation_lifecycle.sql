{#- One row per conversation with a staged event: when it began and when it
    was last heard from, kept up to date as loads arrive. Incremental
    (delete+insert by conversation): a run recomputes the conversations with
    an event in this run's load runs; recomputed_at says when (the classifier
    prepares the transcripts of the conversations recomputed since it last
    ran). Every column is a min or a max over the conversation's staged
    events, and a load run only adds staged events (first delivery is decided
    when a run is parsed and never changes), so a row is its stored values
    folded with the new load runs' events: no read of the conversation's
    older events, whose scan would grow with the history. On Spark the
    table is partitioned by conversation_date and a run rewrites whole
    days: it also recomputes every conversation of the days those
    conversations have events on (conversations_of_whole_days). -#}
{{ config(
    materialized='incremental',
    incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'delete+insert'),
    unique_key='conversation_id',
    partition_by=('conversation_date' if target.type == 'spark' else none),
    scope_from_rows=true,
) }}

{#- an incremental build's load runs, as literals (integers_listed) -#}
{%- set load_runs_in_scope = ref('scope_load_runs') %}
{%- set load_ids_in_scope = integers_listed(load_runs_in_scope, 'load_id') if is_incremental() else none %}

with

-- the new load runs' events summarized per conversation (in a build from
-- nothing, every event)
new_events_summarized as (
    select
        conversation_id,
        -- over the known event types, as fct_conversations counts them
        min(case when is_known_type then event_at end) as first_event_at,
        max(case when is_known_type then event_at end) as last_event_at,
        min(event_at) as first_staged_at,
        -- over every staged event: the warehouse clock is their newest
        max(event_at) as last_staged_at,
        max(load_id) as last_load_id
    from {{ ref('stg_events') }}
    {%- if is_incremental() %}
    where load_id in {{ load_ids_in_scope }}
    {%- endif %}
    group by conversation_id
),

conversations_recomputed as (  -- noqa: ST03
    {{ conversations_of_whole_days('new_events_summarized') }}
),

-- those, and in an incremental build the rows kept for the conversations
-- recomputed: min and max over both are min and max over all their events
events_summarized as (
    select
        new_events_summarized.conversation_id,
        new_events_summarized.first_event_at,
        new_events_summarized.last_event_at,
        new_events_summarized.first_staged_at,
        new_events_summarized.last_staged_at,
        new_events_summarized.last_load_id
    from new_events_summarized
    {%- if is_incremental() %}
    union all
    select
        kept.conversation_id,
        kept.first_event_at,
        kept.last_event_at,
        kept.first_staged_at,
        kept.last_staged_at,
        kept.last_load_id
    from {{ this }} as kept
    where kept.conversation_id in (select conversations_recomputed.conversation_id from conversations_recomputed)
    {%- endif %}
),

lifecycle as (
    select
        events_summarized.conversation_id,
        min(events_summarized.first_event_at) as first_event_at,
        max(events_summarized.last_event_at) as last_event_at,
        min(events_summarized.first_staged_at) as first_staged_at,
        max(events_summarized.last_staged_at) as last_staged_at,
        max(events_summarized.last_load_id) as last_load_id,
        {{ timestamp_literal(run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f')) }} as recomputed_at,
        -- fct_conversations.conversation_date (its first known-type event's
        -- day), or its first staged event's day when it has none: the day
        -- its rows are partitioned by on Spark
        cast(
            coalesce(
                min(events_summarized.first_event_at),
                min(events_summarized.first_staged_at)
            ) as {{ type_date() }}
        ) as conversation_date
    from events_summarized
    group by events_summarized.conversation_id
)

select * from lifecycle
