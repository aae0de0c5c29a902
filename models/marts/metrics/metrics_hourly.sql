{#- The hourly twin of metrics_daily (same metrics, same macro), one row per
    UTC hour of the conversations' first event. Incremental, replaced a whole
    day at a time: late events, and inferred
    abandonment that depends on the newest event, change past days. See
    is_metrics_day_to_refresh() for which days a run recomputes. The post-hook
    removes days that no longer have any conversation (a late event moved
    their only conversation to an earlier day). -#}

-- depends_on: {{ ref('int_conversations_summarized') }}
-- depends_on: {{ ref('stg_events') }}

with

conversations_segmented as (
    select
        int_conversations_segmented.metric_date,
        int_conversations_segmented.metric_hour,
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
        int_conversations_segmented.sentiment_count,
        int_conversations_segmented.sentiment_start,
        int_conversations_segmented.sentiment_end,
        int_conversations_segmented.quality_score,
        int_conversations_segmented.sales_responded_in_order,
        int_conversations_segmented.sales_qualified_in_order,
        int_conversations_segmented.sales_booked_in_order,
        int_conversations_segmented.sales_attended_in_order,
        int_conversations_segmented.sales_converted_in_order
    from {{ ref('int_conversations_segmented') }} as int_conversations_segmented
    where {{ touched('int_conversations_segmented.metric_date', 'day') }}
),

{{ metrics_long_format('conversations_segmented', ['metric_date', 'metric_hour']) }}

final as (
    select
        metrics_long.metric_hour,
        metrics_long.metric_name,
        metrics_long.segment_type,
        metrics_long.segment_value,
        metrics_long.numerator,
        metrics_long.denominator,
        metrics_long.value,
        metrics_long.metric_date
    from metrics_long
)

select * from final
