{#- The hourly twin of metrics_daily (same metrics, same macro): one row per
    UTC hour of the conversations' first event x metric x segment.
    replace_touched by metric_date, like metrics_daily: a run recomputes the
    whole days holding a conversation it touched. -#}

-- depends_on: {{ ref('int_conversations_summarized') }}
-- depends_on: {{ ref('stg_events') }}

with

conversations_segmented as (
    select
        int_conversations_segmented.metric_date,
        int_conversations_segmented.metric_hour,
        int_conversations_segmented.segment_type,
        int_conversations_segmented.segment_value,
        {{ metrics_input_columns('int_conversations_segmented') }}
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
