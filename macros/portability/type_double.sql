{#- An 8-byte floating point type for rates, scores and durations.
    dbt.type_float() renders `float`, a 4-byte REAL on DuckDB: too coarse for
    values compared digit by digit. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}
