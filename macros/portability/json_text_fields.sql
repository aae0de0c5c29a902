{% macro json_text_fields(json_column, keys) -%}
    {{ return(adapter.dispatch('json_text_fields', 'convo_warehouse')(json_column, keys)) }}
{%- endmacro %}

{% macro default__json_text_fields(json_column, keys) -%}
    named_struct(
        {%- for key in keys %}
        '{{ key }}', {{ json_text(json_column, key) }}{{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{#- json_transform parses the object once for every field, unlike json_extract_string
    of a list of paths (benchmarks/results/2026-11-23.md). -#}
{% macro duckdb__json_text_fields(json_column, keys) -%}
    json_transform(
        {{ json_column }},
        '{ {%- for key in keys %}"{{ key }}": "VARCHAR"{{ ", " if not loop.last }}{%- endfor %}}'
    )
{%- endmacro %}

{% macro json_text_field(record_expression, key) -%}
    {{ record_expression }}.{{ adapter.quote(key) }}
{%- endmacro %}
