{% macro list_length(list_expression) -%}
    {{ return(adapter.dispatch('list_length', 'convo_warehouse')(list_expression)) }}
{%- endmacro %}

{% macro default__list_length(list_expression) -%}
    size({{ list_expression }})
{%- endmacro %}

{% macro duckdb__list_length(list_expression) -%}
    len({{ list_expression }})
{%- endmacro %}
