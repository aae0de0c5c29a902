{#- For an incremental run of metrics_daily / metrics_hourly: the CTE
    `metrics_days_to_refresh` (metric_date), every day whose metrics may differ
    from what {{ this }} holds. Emits nothing on a full refresh. A day is
    refreshed when
      1. it holds a conversation that conversations_to_refresh_cte() selects
         (the same rules as the per-conversation models): one with an event
         loaded after the previous build, or one the moved warehouse clock
         carried across the abandonment window, or one the classifier step
         wrote stages, sentiment or a judgment for. Every event date of such a
         conversation counts, which includes its day before a late event
         moved its first event earlier;
      2. it is within `metrics_lookback_days` of the newest conversation day;
      3. every day, when the history the previous run saw reads differently now
         (metrics_history_fingerprint: an alias added to the seed, changed
         staging rules, changed abandon / rephrase vars): the pre-hook
         forget_stale_incremental_build() then empties the table and records
         an empty watermark.
    The watermark (the newest load and event seen by the previous run) is in
    audit.incremental_watermarks (previous_build_cte(), which must come
    first), not in the rows, so the tables' bytes do not depend on how they
    were built. Emits the CTEs followed by a comma. -#}
{% macro metrics_refresh_days() %}
{{ conversations_to_refresh_cte(
    clock_moves_rows=true, previous_rows=ref('int_conversations_summarized'), newly_classified=true
) }}
    {%- if is_incremental() %}

days_of_conversations_to_refresh as (
    select stg_events.event_date as metric_date
    from {{ ref('stg_events') }} as stg_events
    inner join conversations_to_refresh
        on stg_events.conversation_id = conversations_to_refresh.conversation_id
    union
    select int_conversations_summarized.conversation_date as metric_date
    from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
    inner join conversations_to_refresh
        on int_conversations_summarized.conversation_id = conversations_to_refresh.conversation_id
),

days_in_lookback as (
    select distinct int_conversations_summarized.conversation_date as metric_date
    from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
    where int_conversations_summarized.conversation_date >= (
        select {{ dbt.dateadd('day', -1 * var('metrics_lookback_days'), 'max(newest_day.conversation_date)') }}
        from {{ ref('int_conversations_summarized') }} as newest_day
    )
),

metrics_days_to_refresh as (
    select days_of_conversations_to_refresh.metric_date
    from days_of_conversations_to_refresh
    union
    select days_in_lookback.metric_date
    from days_in_lookback
),
    {%- endif %}
{%- endmacro %}
