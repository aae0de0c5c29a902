{% macro iso_weekday(date_expression) -%}
    {{ return(adapter.dispatch('iso_weekday', 'convo_warehouse')(date_expression)) }}
{%- endmacro %}

{% macro default__iso_weekday(date_expression) -%}
    (weekday({{ date_expression }}) + 1)
{%- endmacro %}

{% macro duckdb__iso_weekday(date_expression) -%}
    isodow({{ date_expression }})
{%- endmacro %}
