{#- For a model with one row per conversation built incrementally: the CTE
    `conversations_to_refresh` (conversation_id), every conversation whose row
    may differ from what {{ this }} holds. Needs previous_build_cte() before
    it; emits the CTE followed by a comma. A conversation is refreshed when
      1. it has an event loaded after the previous build (every conversation
         when there is no usable watermark: first build, or a stale history);
      2. with `clock_moves_rows` (models with inferred abandonment): its last
         event is less than `abandon_after_minutes` before the previous
         build's warehouse clock. Its inferred abandonment compares with the
         newest event anywhere, which may have moved; every older
         conversation was already past the window and stays as it is. -#}
{% macro conversations_to_refresh_cte(clock_moves_rows=false) %}
conversations_to_refresh as (
    select distinct stg_events.conversation_id
    from {{ ref('stg_events') }} as stg_events
    cross join previous_build
    where
        previous_build.loaded_through_load_id is null
        or stg_events.load_id > previous_build.loaded_through_load_id
    {%- if clock_moves_rows and is_incremental() %}
    union
    select previous_rows.conversation_id
    from {{ this }} as previous_rows
    cross join previous_build
    where
        previous_rows.last_event_at >= {{ dbt.dateadd(
            'minute', -1 * var('abandon_after_minutes'), 'previous_build.newest_event_at'
        ) }}
    {%- endif %}
),
{%- endmacro %}
