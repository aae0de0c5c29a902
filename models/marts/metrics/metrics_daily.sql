{#- Incremental, replaced a whole day at a time: late events, and inferred
    abandonment that depends on the newest event, change past days. See
    metrics_refresh_days() for which days a run recomputes. The post-hook
    removes days that no longer have any conversation (a late event moved
    their only conversation to an earlier day). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='metric_date',
        on_schema_change='fail',
        post_hook="{{ metrics_delete_vanished_days() }}",
    )
}}

-- depends_on: {{ ref('int_conversations_summarized') }}

with

{{ metrics_refresh_days() }}

conversations_segmented as (
    select
        int_conversations_segmented.metric_date,
        int_conversations_segmented.segment_type,
        int_conversations_segmented.segment_value,
        int_conversations_segmented.initialized,
        int_conversations_segmented.started,
        int_conversations_segmented.engaged,
        int_conversations_segmented.was_completed,
        int_conversations_segmented.was_abandoned,
        int_conversations_segmented.had_handoff,
        int_conversations_segmented.converted,
        int_conversations_segmented.user_turns,
        int_conversations_segmented.fallback_count,
        int_conversations_segmented.duration_seconds,
        int_conversations_segmented.first_response_ms,
        int_conversations_segmented.satisfaction_score,
        int_conversations_segmented.feedback_score,
        int_conversations_segmented.rephrase_count,
        int_conversations_segmented.sentiment_sum,
        int_conversations_segmented.sentiment_count
    from {{ ref('int_conversations_segmented') }} as int_conversations_segmented
    {% if is_incremental() %}
        where int_conversations_segmented.metric_date in (
            select metrics_days_to_refresh.metric_date from metrics_days_to_refresh
        )
    {% endif %}
),

events as (
    select
        stg_events.load_id,
        stg_events.event_at,
        stg_events.event_type,
        stg_events.is_known_type
    from {{ ref('stg_events') }} as stg_events
),

{{ metrics_long_format('conversations_segmented', ['metric_date']) }}

build_watermark as (
    select
        max(events.load_id) as loaded_through_load_id,
        max(case when events.is_known_type then events.event_at end) as newest_event_at,
        {{ metrics_history_fingerprint('events') }} as history_fingerprint
    from events
),

metrics_stamped as (
    select
        metrics_long.metric_date,
        metrics_long.metric_name,
        metrics_long.segment_type,
        metrics_long.segment_value,
        metrics_long.numerator,
        metrics_long.denominator,
        metrics_long.value,
        cast(build_watermark.loaded_through_load_id as {{ dbt.type_bigint() }}) as loaded_through_load_id,
        cast(build_watermark.newest_event_at as {{ dbt.type_timestamp() }}) as newest_event_at,
        cast(build_watermark.history_fingerprint as {{ dbt.type_string() }}) as history_fingerprint
    from metrics_long
    cross join build_watermark
)

select * from metrics_stamped
