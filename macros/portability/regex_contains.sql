{% macro regex_contains(expression, pattern_expression) -%}
    {{ return(adapter.dispatch('regex_contains', 'convo_warehouse')(expression, pattern_expression)) }}
{%- endmacro %}

{% macro default__regex_contains(expression, pattern_expression) -%}
    ({{ expression }} rlike {{ pattern_expression }})
{%- endmacro %}

{% macro duckdb__regex_contains(expression, pattern_expression) -%}
    regexp_matches({{ expression }}, {{ pattern_expression }})
{%- endmacro %}
