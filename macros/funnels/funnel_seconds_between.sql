{% macro funnel_seconds_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('funnel_seconds_between', 'convo_warehouse')(start_at, end_at)) }}
{%- endmacro %}

{% macro default__funnel_seconds_between(start_at, end_at) -%}
    cast(unix_millis({{ end_at }}) - unix_millis({{ start_at }}) as double) / 1000.0
{%- endmacro %}

{% macro duckdb__funnel_seconds_between(start_at, end_at) -%}
    (epoch_ms({{ end_at }}) - epoch_ms({{ start_at }})) / 1000.0
{%- endmacro %}
