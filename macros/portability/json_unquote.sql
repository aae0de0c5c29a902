{% macro json_unquote(json_text_expression) -%}
    {{ return(adapter.dispatch('json_unquote', 'convo_warehouse')(json_text_expression)) }}
{%- endmacro %}

{% macro default__json_unquote(json_text_expression) -%}
    get_json_object(concat('{"value":', {{ json_text_expression }}, '}'), '$.value')
{%- endmacro %}

{% macro duckdb__json_unquote(json_text_expression) -%}
    json_extract_string({{ json_text_expression }}, '$')
{%- endmacro %}
