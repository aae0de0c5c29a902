{% macro first_value_by(value, order_by) -%}
    {{ return(adapter.dispatch('first_value_by', 'convo_warehouse')(value, order_by)) }}
{%- endmacro %}

{% macro default__first_value_by(value, order_by) -%}
    min_by({{ value }}, case when {{ value }} is not null then {{ order_by }} end)
{%- endmacro %}

{% macro duckdb__first_value_by(value, order_by) -%}
    arg_min({{ value }}, {{ order_by }}) filter (where {{ value }} is not null)
{%- endmacro %}
