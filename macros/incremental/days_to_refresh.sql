{#- For an incremental model whose rows aggregate conversations by day (the
    metrics, the funnel breakdown): the CTE `days_to_refresh`
    (refresh_date), every day whose rows may differ from what {{ this }}
    holds. Reads the conversations to refresh stored by
    create_conversations_to_refresh(refresh) (days_to_refresh_literals()
    stores them first); emits its CTEs followed by a comma, nothing on a
    full build. A day is refreshed when
      1. it holds a conversation to refresh (`refresh` as for the
         per-conversation models; previous_rows
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
    {%- if is_incremental() %}

days_of_conversations_to_refresh as (
    select stg_events.event_date as refresh_date
    from {{ ref('stg_events') }} as stg_events
    inner join {{ conversations_to_refresh_relation() }} as conversations_to_refresh
        on stg_events.conversation_id = conversations_to_refresh.conversation_id
    union
    select int_conversations_summarized.conversation_date as refresh_date
    from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
    inner join {{ conversations_to_refresh_relation() }} as conversations_to_refresh
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

{#- The days days_to_refresh_cte(refresh, lookback_days) selects, as a
    query (one column, refresh_date). -#}
{% macro days_to_refresh_query(refresh={}, lookback_days=none) %}
    with
    {{ days_to_refresh_cte(refresh, lookback_days) }}
    refreshed as (
        select days_to_refresh.refresh_date
        from days_to_refresh
    )
    select refreshed.refresh_date from refreshed
{%- endmacro %}

{#- The days to refresh, read now (a sorted list): the conversations to
    refresh are stored first (create_conversations_to_refresh(refresh)), so
    DuckDB joins the history to a set of known size, then dropped. -#}
{% macro days_to_refresh_literals(refresh={}, lookback_days=none) %}
    {%- do run_query(create_conversations_to_refresh(refresh)) -%}
    {%- set days = run_query(days_to_refresh_query(refresh, lookback_days)).columns[0].values() | sort -%}
    {%- do run_query(drop_conversations_to_refresh()) -%}
    {{ return(days) }}
{%- endmacro %}

{#- `column` in a list of date literals; false for none. -#}
{% macro is_in_days(column, days) %}
    {%- if days | length == 0 -%}
        false
    {%- else -%}
        {{ column }} in (
            {%- for day in days -%}
                cast('{{ day }}' as {{ type_date() }}){{ ", " if not loop.last }}
            {%- endfor -%}
        )
    {%- endif -%}
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
    {%- if not execute -%}
        {#- parse time: take the refs the set reads, so dbt knows the
            dependencies -#}
        {%- set parsed = conversations_to_refresh_query(refresh) -%}
        true
    {%- elif not is_incremental() -%}
        true
    {%- else -%}
        {%- set seed_relations = [] -%}
        {%- for name in seeds -%}
            {%- do seed_relations.append(ref(name)) -%}
        {%- endfor -%}
        {%- if incremental_build_is_stale(none, seed_relations, vars) -%}
            true
        {%- else -%}
            {{ is_in_days(column, days_to_refresh_literals(refresh, lookback_days)) }}
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
    where {{ is_in_days(day_column, days_to_refresh_literals(refresh)) }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
