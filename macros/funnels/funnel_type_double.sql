{#- An 8-byte floating point type for rates and durations. funnel_type_double()
    is a 4-byte REAL on DuckDB, too coarse for rates compared value by value. -#}
{% macro funnel_type_double() -%}
    {{ return(adapter.dispatch('funnel_type_double', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__funnel_type_double() -%}
    double
{%- endmacro %}

{% macro postgres__funnel_type_double() -%}
    double precision
{%- endmacro %}
