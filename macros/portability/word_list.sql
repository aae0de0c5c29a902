{#- The lower-cased words of a text in order, repeats kept (words are runs
    of [a-z0-9'], as word_set's); an empty list for null text. Two messages
    are worded alike when their word lists are equal. -#}
{% macro word_list(text_expression) -%}
    {{ return(adapter.dispatch('word_list', 'convo_warehouse')(text_expression)) }}
{%- endmacro %}

{% macro default__word_list(text_expression) -%}
    filter(split(regexp_replace(lower(coalesce({{ text_expression }}, '')), '[^a-z0-9'']+', ' '), ' '), word -> word != '')
{%- endmacro %}

{% macro duckdb__word_list(text_expression) -%}
    regexp_extract_all(lower(coalesce({{ text_expression }}, '')), '[a-z0-9'']+')
{%- endmacro %}
