{#- A list of 4-byte floats (a message's sentence embedding: 384 of them
    hold the model's precision at half a double's storage). -#}
{% macro type_float_list() -%}
    {{ return(adapter.dispatch('type_float_list', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__type_float_list() -%}
    array<float>
{%- endmacro %}

{% macro duckdb__type_float_list() -%}
    float[]
{%- endmacro %}
