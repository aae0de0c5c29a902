{#- For an incremental run of metrics_daily / metrics_hourly: the CTE
    `metrics_days_to_refresh` (metric_date), every day whose metrics may differ
    from what {{ this }} holds. Emits nothing on a full refresh. A day is
    refreshed when
      1. a conversation of it has an event loaded after the watermark (a load_id
         above the largest loaded_through_load_id stored): every event date of
         such a conversation, which includes its day before a late event moved
         its first event earlier;
      2. a conversation of it ended less than `abandon_after_minutes` before the
         newest event seen by the previous run: its inferred abandonment
         depends on the newest event in the warehouse, which may have moved;
      3. it is within `metrics_lookback_days` of the newest conversation day;
      4. every day, when the history the previous run saw reads differently now
         (metrics_history_fingerprint: an alias added to the seed, changed
         staging rules, changed abandon / rephrase vars).
    Emits the CTEs followed by a comma. -#}
{% macro metrics_refresh_days() %}
    {%- if is_incremental() %}
previous_run_watermark as (
    select
        max(previous_run.loaded_through_load_id) as loaded_through_load_id,
        max(previous_run.newest_event_at) as newest_event_at
    from {{ this }} as previous_run
),

previous_run_fingerprint as (
    select max(previous_run.history_fingerprint) as history_fingerprint
    from {{ this }} as previous_run
    inner join previous_run_watermark
        on previous_run.loaded_through_load_id = previous_run_watermark.loaded_through_load_id
),

-- the history the previous run saw, as the warehouse reads it now
history_read_now as (
    select {{ metrics_history_fingerprint('stg_events') }} as history_fingerprint
    from {{ ref('stg_events') }} as stg_events
    inner join previous_run_watermark
        on stg_events.load_id <= previous_run_watermark.loaded_through_load_id
),

-- history re-read differently (alias seed, staging rules, vars): every day
-- is recomputed, as if there were no previous run
metrics_watermark as (
    select
        case
            when previous_run_fingerprint.history_fingerprint = history_read_now.history_fingerprint
                then previous_run_watermark.loaded_through_load_id
            else -1
        end as loaded_through_load_id,
        case
            when previous_run_fingerprint.history_fingerprint = history_read_now.history_fingerprint
                then previous_run_watermark.newest_event_at
        end as newest_event_at
    from previous_run_watermark
    cross join previous_run_fingerprint
    cross join history_read_now
),

conversations_with_new_events as (
    select distinct stg_events.conversation_id
    from {{ ref('stg_events') }} as stg_events
    inner join metrics_watermark
        on stg_events.load_id > metrics_watermark.loaded_through_load_id
),

days_of_conversations_with_new_events as (
    select stg_events.event_date as metric_date
    from {{ ref('stg_events') }} as stg_events
    inner join conversations_with_new_events
        on stg_events.conversation_id = conversations_with_new_events.conversation_id
    union
    select int_conversations_summarized.conversation_date as metric_date
    from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
    inner join conversations_with_new_events
        on int_conversations_summarized.conversation_id = conversations_with_new_events.conversation_id
),

days_with_recent_conversations as (
    select distinct int_conversations_summarized.conversation_date as metric_date
    from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
    cross join metrics_watermark
    where
        metrics_watermark.newest_event_at is null
        or int_conversations_summarized.last_event_at >= {{ dbt.dateadd('minute', -1 * var('abandon_after_minutes'), 'metrics_watermark.newest_event_at') }}
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
    select days_of_conversations_with_new_events.metric_date
    from days_of_conversations_with_new_events
    union
    select days_with_recent_conversations.metric_date
    from days_with_recent_conversations
    union
    select days_in_lookback.metric_date
    from days_in_lookback
),
    {%- endif %}
{%- endmacro %}
