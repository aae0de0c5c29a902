{% macro milliseconds_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('milliseconds_between', 'convo_warehouse')(start_at, end_at)) }}
{%- endmacro %}

{% macro default__milliseconds_between(start_at, end_at) -%}
    (unix_millis({{ end_at }}) - unix_millis({{ start_at }}))
{%- endmacro %}

{% macro duckdb__milliseconds_between(start_at, end_at) -%}
    {{ dbt.datediff(start_at, end_at, 'millisecond') }}
{%- endmacro %}
