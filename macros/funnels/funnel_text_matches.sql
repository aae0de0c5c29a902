{% macro funnel_text_matches(text_expression, pattern) -%}
    {{ return(adapter.dispatch('funnel_text_matches', 'convo_warehouse')(text_expression, pattern)) }}
{%- endmacro %}

{% macro default__funnel_text_matches(text_expression, pattern) -%}
    coalesce({{ text_expression }} rlike concat('(?i)', {{ funnel_sql_literal(pattern) }}), false)
{%- endmacro %}

{% macro duckdb__funnel_text_matches(text_expression, pattern) -%}
    coalesce(regexp_matches({{ text_expression }}, {{ funnel_sql_literal(pattern) }}, 'i'), false)
{%- endmacro %}
