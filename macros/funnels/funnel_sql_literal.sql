{#- A SQL string literal for a Jinja value: the project's string_literal (one
    quoting rule for every engine). -#}
{% macro funnel_sql_literal(value) -%}
    {{ return(string_literal(value)) }}
{%- endmacro %}
