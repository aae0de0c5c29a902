{#- A SQL string literal for a Jinja value: single quotes doubled. -#}
{% macro funnel_sql_literal(value) -%}
    '{{ (value | string) | replace("'", "''") }}'
{%- endmacro %}
