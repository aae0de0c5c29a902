{% macro regex_replace_all(expression, pattern_expression, replacement_expression) -%}
    {{ return(adapter.dispatch('regex_replace_all', 'convo_warehouse')(
        expression, pattern_expression, replacement_expression
    )) }}
{%- endmacro %}

{% macro default__regex_replace_all(expression, pattern_expression, replacement_expression) -%}
    regexp_replace({{ expression }}, {{ pattern_expression }}, {{ replacement_expression }})
{%- endmacro %}

{% macro duckdb__regex_replace_all(expression, pattern_expression, replacement_expression) -%}
    regexp_replace({{ expression }}, {{ pattern_expression }}, {{ replacement_expression }}, 'g')
{%- endmacro %}
