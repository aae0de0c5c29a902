{% macro sort_key(expressions) -%}
    {{ return(adapter.dispatch('sort_key', 'convo_warehouse')(expressions)) }}
{%- endmacro %}

{% macro default__sort_key(expressions) -%}
    named_struct(
        {%- for expression in expressions %}
        'key_{{ loop.index }}', {{ expression }}{{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{% macro duckdb__sort_key(expressions) -%}
    struct_pack(
        {%- for expression in expressions %}
        key_{{ loop.index }} := {{ expression }}{{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}
