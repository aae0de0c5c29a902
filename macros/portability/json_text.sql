{% macro json_text(json_column, key) -%}
    {{ return(adapter.dispatch('json_text', 'convo_warehouse')(json_column, key)) }}
{%- endmacro %}

{% macro default__json_text(json_column, key) -%}
    get_json_object({{ json_column }}, '$.{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(json_column, key) -%}
    json_extract_string({{ json_column }}, '$."{{ key }}"')
{%- endmacro %}
