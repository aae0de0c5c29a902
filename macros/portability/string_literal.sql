{#- A SQL string literal holding `value` exactly (a regular expression's
    backslashes included), quoted as the engine reads literals. -#}
{% macro string_literal(value) -%}
    {{ return(adapter.dispatch('string_literal', 'convo_warehouse')(value)) }}
{%- endmacro %}

{#- Spark SQL reads backslash escapes inside literals. -#}
{% macro default__string_literal(value) -%}
    '{{ (value | string) | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{#- DuckDB literals are standard SQL: only the quote is doubled. -#}
{% macro duckdb__string_literal(value) -%}
    '{{ (value | string) | replace("'", "''") }}'
{%- endmacro %}
