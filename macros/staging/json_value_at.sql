{#- The JSON value (as JSON text: '"abc"', '123', '{"a": 1}') of a top-level
    key of a JSON object held as text, the key given by an SQL expression
    (a column), or null when the object has no such key. -#}
{% macro json_value_at(json_text_expression, key_expression) -%}
    {{ return(adapter.dispatch('json_value_at', 'convo_warehouse')(json_text_expression, key_expression)) }}
{%- endmacro %}

{% macro default__json_value_at(json_text_expression, key_expression) -%}
    get_json_object({{ json_text_expression }}, concat('$.', {{ key_expression }}))
{%- endmacro %}

{% macro duckdb__json_value_at(json_text_expression, key_expression) -%}
    cast(json_extract({{ json_text_expression }}, concat('$."', {{ key_expression }}, '"')) as varchar)
{%- endmacro %}
