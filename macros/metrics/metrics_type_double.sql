{#- An 8-byte floating point type. dbt.type_float() renders `float`, which is
    a 4-byte REAL on DuckDB: too coarse for sums of durations. -#}
{% macro metrics_type_double() %}
    {{ return(adapter.dispatch('metrics_type_double', 'convo_warehouse')()) }}
{% endmacro %}

{% macro default__metrics_type_double() %}double precision{% endmacro %}

{% macro duckdb__metrics_type_double() %}double{% endmacro %}

{% macro spark__metrics_type_double() %}double{% endmacro %}
