{% macro word_set(text_expression) -%}
    {{ return(adapter.dispatch('word_set', 'convo_warehouse')(text_expression)) }}
{%- endmacro %}

{% macro default__word_set(text_expression) -%}
    array_distinct(filter(split(regexp_replace(lower(coalesce({{ text_expression }}, '')), '[^a-z0-9'']+', ' '), ' '), word -> word != ''))
{%- endmacro %}

{% macro duckdb__word_set(text_expression) -%}
    list_distinct(regexp_extract_all(lower(coalesce({{ text_expression }}, '')), '[a-z0-9'']+'))
{%- endmacro %}
