{#- For an incremental model whose rows aggregate conversations by day (the
    metrics, the funnel breakdown): the CTE `days_to_refresh`
    (refresh_date), every day whose rows may differ from what {{ this }}
    holds. Needs previous_build_cte() before it; emits its CTEs followed by
    a comma, nothing on a full build. A day is refreshed when
      1. it holds a conversation that conversations_to_refresh_computed_cte(**refresh)
         selects (`refresh` as for the per-conversation models; previous_rows
         int_conversations_summarized). Every event date of such a
         conversation counts, which includes its day before a late event
         moved its first event earlier;
      2. with `lookback_days`, it is within that many days of the newest
         conversation day;
      3. every day, when the history the previous build saw reads differently
         now (a changed fingerprint: the pre-hook
         forget_stale_incremental_build() then empties the table and records
         an empty watermark). -#}
{% macro days_to_refresh_cte(refresh={}, lookback_days=none) %}
{{ conversations_to_refresh_computed_cte(**refresh) }}
    {%- if is_incremental() %}

days_of_conversations_to_refresh as (
    select stg_events.event_date as refresh_date
    from {{ ref('stg_events') }} as stg_events
    inner join conversations_to_refresh
        on stg_events.conversation_id = conversations_to_refresh.conversation_id
    union
    select int_conversations_summarized.conversation_date as refresh_date
    from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
    inner join conversations_to_refresh
        on int_conversations_summarized.conversation_id = conversations_to_refresh.conversation_id
),
        {%- if lookback_days is not none %}

days_in_lookback as (
    select distinct int_conversations_summarized.conversation_date as refresh_date
    from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
    where int_conversations_summarized.conversation_date >= (
        select {{ dbt.dateadd('day', -1 * lookback_days, 'max(newest_day.conversation_date)') }}
        from {{ ref('int_conversations_summarized') }} as newest_day
    )
),
        {%- endif %}

days_to_refresh as (
    select days_of_conversations_to_refresh.refresh_date
    from days_of_conversations_to_refresh
        {%- if lookback_days is not none %}
    union
    select days_in_lookback.refresh_date
    from days_in_lookback
        {%- endif %}
),
    {%- endif %}
{%- endmacro %}

{#- The days days_to_refresh_cte(refresh, lookback_days) selects, as a query
    (one column, refresh_date) with its own previous_build. -#}
{% macro days_to_refresh_query(refresh={}, lookback_days=none) %}
    with
    {{ previous_build_cte() }}
    {{ days_to_refresh_cte(refresh, lookback_days) }}
    refreshed as (
        select days_to_refresh.refresh_date
        from days_to_refresh
    )
    select refreshed.refresh_date from refreshed
{%- endmacro %}

{#- A condition for the body of a model replaced by day: `column` is one of
    the days days_to_refresh_query(refresh, lookback_days) returns, written
    as a list of date literals read when the model is compiled: DuckDB
    pushes a literal list down through views and joins, and applies an
    `in (subquery)` after them (12x slower on the metrics at 10M events).
    True on a full build, at parse time, and when the build is stale
    (incremental_build_is_stale(): its pre-hook then empties the table).
    `seeds` (names) and `vars`: those of the model's watermark hooks. -#}
{% macro is_day_to_refresh(column, refresh={}, lookback_days=none, seeds=[], vars=[]) %}
    {#- rendered at parse time too, so dbt knows the query's dependencies -#}
    {%- set days_query = days_to_refresh_query(refresh, lookback_days) -%}
    {%- set seed_relations = [] -%}
    {%- if execute and is_incremental() -%}
        {%- for name in seeds -%}
            {%- do seed_relations.append(ref(name)) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if not execute or not is_incremental() or incremental_build_is_stale(none, seed_relations, vars) -%}
        true
    {%- else -%}
        {%- set days = run_query(days_query).columns[0].values() | sort -%}
        {%- if days | length == 0 -%}
            false
        {%- else -%}
            {{ column }} in (
                {%- for day in days -%}
                    cast('{{ day }}' as {{ type_date() }}){{ ", " if not loop.last }}
                {%- endfor -%}
            )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The metrics' days to refresh (metrics_daily, metrics_hourly) as
    is_day_to_refresh(column): the conversations whose facts may differ (new
    events, the clock carrying them across the abandonment window, new
    classifier output; the metrics read all three through
    int_conversations_segmented) and the newest metrics_lookback_days
    days. -#}
{% macro is_metrics_day_to_refresh(column) %}
    {{ return(is_day_to_refresh(
        column,
        refresh={
            'clock_moves_rows': true,
            'previous_rows': 'int_conversations_summarized',
            'newly_classified': true,
        },
        lookback_days=var('metrics_lookback_days'),
    )) }}
{%- endmacro %}

{#- Pre-hook of a model replaced day by day (day_replaced_config): on an
    incremental run, delete every row of the days this run recomputes (the
    set its body selects with days_to_refresh_cte(refresh)), so a day, or a
    group of a day, that has no row any more loses its old rows. -#}
{% macro delete_days_to_refresh(refresh={}, day_column='conversation_date') %}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where {{ day_column }} in ({{ days_to_refresh_query(refresh) }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
