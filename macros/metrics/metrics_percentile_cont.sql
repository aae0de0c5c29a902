{% macro metrics_percentile_cont(expression, fraction) %}
    {{ return(adapter.dispatch('metrics_percentile_cont', 'convo_warehouse')(expression, fraction)) }}
{% endmacro %}

{% macro default__metrics_percentile_cont(expression, fraction) %}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{% endmacro %}

{% macro duckdb__metrics_percentile_cont(expression, fraction) %}
    quantile_cont({{ expression }}, {{ fraction }})
{% endmacro %}

{% macro spark__metrics_percentile_cont(expression, fraction) %}
    percentile({{ expression }}, {{ fraction }})
{% endmacro %}
