{% macro funnel_median(expression) -%}
    {{ return(adapter.dispatch('funnel_median', 'convo_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__funnel_median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro duckdb__funnel_median(expression) -%}
    quantile_cont({{ expression }}, 0.5)
{%- endmacro %}
