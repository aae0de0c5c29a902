{% macro word_list(text_expression) -%}
    {{ return(adapter.dispatch('word_list', 'convo_warehouse')(text_expression)) }}
{%- endmacro %}

{% macro default__word_list(text_expression) -%}
    filter(split(regexp_replace(lower(coalesce({{ text_expression }}, '')), '[^a-z0-9'']+', ' '), ' '), word -> word != '')
{%- endmacro %}

{% macro duckdb__word_list(text_expression) -%}
    regexp_extract_all(lower(coalesce({{ text_expression }}, '')), '[a-z0-9'']+')
{%- endmacro %}
