{#- For an incremental model whose rows follow conversations: the CTE
    `conversations_to_refresh` (conversation_id), every conversation whose
    facts may differ from what the previous build saw. Needs
    previous_build_cte() before it; emits its CTEs followed by a comma. A
    conversation is refreshed when
      1. it has an event loaded after the previous build (every conversation
         when there is no usable watermark: first build, or a stale history);
      2. with `clock_moves_rows` (rows that depend on inferred abandonment):
         the warehouse clock moved it across the abandonment window. Inferred
         abandonment compares a conversation's last event with the newest
         staged event anywhere (the clock), so it changes exactly for the
         conversations whose last event is at least `abandon_after_minutes`
         before the new clock but was not before the previous build's clock;
         a clock that did not move changes nothing.
    `previous_rows` (default {{ this }}): a relation with conversation_id and
    last_event_at of every conversation built before; a model that is not one
    row per conversation (the metrics) passes int_conversations_summarized,
    whose last_event_at is unchanged for every conversation not in 1.
    Emits nothing on a full build (is_incremental() false). -#}
{% macro conversations_to_refresh_cte(clock_moves_rows=false, previous_rows=none) %}
    {%- if is_incremental() %}
conversations_with_new_events as (
    select distinct stg_events.conversation_id
    from {{ ref('stg_events') }} as stg_events
    cross join previous_build
    where
        previous_build.loaded_through_load_id is null
        or stg_events.load_id > previous_build.loaded_through_load_id
),

    {%- if clock_moves_rows %}

warehouse_clock_now as (
    select max(stg_events.event_at) as newest_event_at
    from {{ ref('stg_events') }} as stg_events
),

conversations_crossing_abandonment as (
    select previous_rows.conversation_id
    from {{ previous_rows if previous_rows is not none else this }} as previous_rows
    cross join previous_build
    cross join warehouse_clock_now
    where
        previous_rows.last_event_at >= {{ dbt.dateadd(
            'minute', -1 * var('abandon_after_minutes'), 'previous_build.newest_event_at'
        ) }}
        and previous_rows.last_event_at < {{ dbt.dateadd(
            'minute', -1 * var('abandon_after_minutes'), 'warehouse_clock_now.newest_event_at'
        ) }}
),
    {%- endif %}

conversations_to_refresh as (
    select conversations_with_new_events.conversation_id
    from conversations_with_new_events
    {%- if clock_moves_rows %}
    union
    select conversations_crossing_abandonment.conversation_id
    from conversations_crossing_abandonment
    {%- endif %}
),
    {%- endif %}
{%- endmacro %}

{#- A condition for a model using conversations_to_refresh_cte(): `column` is
    a conversation to refresh on an incremental run; true on a full build. -#}
{% macro is_conversation_to_refresh(column) %}
    {%- if is_incremental() -%}
        {{ column }} in (select conversations_to_refresh.conversation_id from conversations_to_refresh)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
