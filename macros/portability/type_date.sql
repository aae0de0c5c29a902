{#- A calendar date type (dbt has no type_date() cross-database macro). -#}
{% macro type_date() -%}
    {{ return(adapter.dispatch('type_date', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__type_date() -%}
    date
{%- endmacro %}
