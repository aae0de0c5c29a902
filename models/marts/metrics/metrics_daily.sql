{#- One row per UTC day of the conversations' first event x metric x
    segment (metrics_long_format() over metrics_definitions()).
    replace_touched by metric_date: a run recomputes every day holding a
    conversation it touched (new events, or the clock carrying it across the
    abandonment window) and deletes a day left with no conversation. -#}

-- depends_on: {{ ref('int_conversations_summarized') }}
-- depends_on: {{ ref('stg_events') }}

with

conversations_segmented as (
    select
        int_conversations_segmented.metric_date,
        int_conversations_segmented.segment_type,
        int_conversations_segmented.segment_value,
        {{ metrics_input_columns('int_conversations_segmented') }}
    from {{ ref('int_conversations_segmented') }} as int_conversations_segmented
    where {{ touched('int_conversations_segmented.metric_date', 'day') }}
),

{{ metrics_long_format('conversations_segmented', ['metric_date']) }}

final as (
    select
        metrics_long.metric_date,
        metrics_long.metric_name,
        metrics_long.segment_type,
        metrics_long.segment_value,
        metrics_long.numerator,
        metrics_long.denominator,
        metrics_long.value
    from metrics_long
)

select * from final
