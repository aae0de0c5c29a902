{#- The hourly twin of metrics_daily (same metrics, same macro): one row per
    UTC hour of the conversations' first event x metric x segment.
    incremental by metric_date, like metrics_daily: a run recomputes the
    whole days holding a conversation in scope. -#}
{{ config(
    unique_key=['metric_hour', 'metric_name', 'segment_type', 'segment_value'],
    scope_key='metric_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('metric_date' if target.type == 'spark' else none),
) }}

{#- the days this run rewrites, as literals: the view read below computes only those days -#}
{%- set scope_days = ref('scope_days') %}

with

conversations_segmented as (
    select
        int_conversations_segmented.metric_date,
        int_conversations_segmented.metric_hour,
        int_conversations_segmented.segment_type,
        int_conversations_segmented.segment_value,
        {{ metrics_input_columns('int_conversations_segmented') }}
    from {{ ref('int_conversations_segmented') }} as int_conversations_segmented
    {%- if is_incremental() %}
    where int_conversations_segmented.metric_date in {{ dates_listed(scope_days, 'event_date') }}
    {%- endif %}
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
