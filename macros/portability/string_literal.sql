{% macro string_literal(value) -%}
    {{ return(adapter.dispatch('string_literal', 'convo_warehouse')(value)) }}
{%- endmacro %}

{% macro default__string_literal(value) -%}
    '{{ (value | string) | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{% macro duckdb__string_literal(value) -%}
    '{{ (value | string) | replace("'", "''") }}'
{%- endmacro %}
