{#- A timestamp value (text or a datetime rendered as text) as a SQL literal. -#}
{% macro timestamp_literal(value) -%}
    cast('{{ value }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
