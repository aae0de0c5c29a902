{% macro checkpoint_warehouse() -%}
    {{ return(adapter.dispatch('checkpoint_warehouse', 'convo_warehouse')()) }}
{%- endmacro %}
{% macro default__checkpoint_warehouse() %}{% endmacro %}
{% macro duckdb__checkpoint_warehouse() %}checkpoint{% endmacro %}
