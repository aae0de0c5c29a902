{% macro funnel_sql_literal(value) -%}
    {{ return(string_literal(value)) }}
{%- endmacro %}
