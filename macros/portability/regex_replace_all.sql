{#- Every match of a regular expression (a SQL expression) replaced by a
    replacement (a SQL expression). Group references in the replacement are
    engine syntax (`\1` on DuckDB, `$1` on Spark). -#}
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
