{% macro type_float_list() -%}
    {{ return(adapter.dispatch('type_float_list', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__type_float_list() -%}
    array<float>
{%- endmacro %}

{% macro duckdb__type_float_list() -%}
    float[]
{%- endmacro %}
