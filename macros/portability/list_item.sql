{#- The item at a 1-based position of a list/array. -#}
{% macro list_item(list_expression, position) -%}
    {{ return(adapter.dispatch('list_item', 'convo_warehouse')(list_expression, position)) }}
{%- endmacro %}

{% macro default__list_item(list_expression, position) -%}
    element_at({{ list_expression }}, {{ position }})
{%- endmacro %}

{% macro duckdb__list_item(list_expression, position) -%}
    {{ list_expression }}[{{ position }}]
{%- endmacro %}
