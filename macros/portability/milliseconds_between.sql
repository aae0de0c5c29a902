{#- Whole milliseconds from `start_at` to `end_at` (each truncated to the
    millisecond; negative when `end_at` is earlier; null when either is
    null). dbt.datediff's Spark version of 'millisecond' goes through a
    floating-point division and `ceil`, and gave results far from DuckDB's
    (make test-spark), hence our own. -#}
{% macro milliseconds_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('milliseconds_between', 'convo_warehouse')(start_at, end_at)) }}
{%- endmacro %}

{% macro default__milliseconds_between(start_at, end_at) -%}
    (unix_millis({{ end_at }}) - unix_millis({{ start_at }}))
{%- endmacro %}

{% macro duckdb__milliseconds_between(start_at, end_at) -%}
    {{ dbt.datediff(start_at, end_at, 'millisecond') }}
{%- endmacro %}
