{% macro type_date() -%}
    {{ return(adapter.dispatch('type_date', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__type_date() -%}
    date
{%- endmacro %}
