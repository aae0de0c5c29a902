{% macro json_value_at(json_text_expression, key_expression) -%}
    {{ return(adapter.dispatch('json_value_at', 'convo_warehouse')(json_text_expression, key_expression)) }}
{%- endmacro %}

{% macro default__json_value_at(json_text_expression, key_expression) -%}
    get_json_object({{ json_text_expression }}, concat('$.', {{ key_expression }}))
{%- endmacro %}

{% macro duckdb__json_value_at(json_text_expression, key_expression) -%}
    cast(json_extract({{ json_text_expression }}, concat('$."', {{ key_expression }}, '"')) as varchar)
{%- endmacro %}

{#- Spark's get_json_object drops a string's quotes (a string and a number would
    read alike); a VARIANT keeps the JSON text, as on DuckDB. -#}
{% macro spark__json_value_at(json_text_expression, key_expression) -%}
    to_json(from_json({{ json_text_expression }}, 'map<string, variant>')[{{ key_expression }}])
{%- endmacro %}
