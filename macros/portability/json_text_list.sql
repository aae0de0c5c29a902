{#- Text values of several top-level keys of a JSON object, parsed once, as a
    list; pick items with list_item(list, position) (1-based). -#}
{% macro json_text_list(json_column, keys) -%}
    {{ return(adapter.dispatch('json_text_list', 'convo_warehouse')(json_column, keys)) }}
{%- endmacro %}

{% macro default__json_text_list(json_column, keys) -%}
    array(
        {%- for key in keys %}
        get_json_object({{ json_column }}, '$.{{ key }}'){{ "," if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{% macro duckdb__json_text_list(json_column, keys) -%}
    json_extract_string(
        {{ json_column }},
        [{%- for key in keys %}'$."{{ key }}"'{{ ", " if not loop.last }}{%- endfor %}]
    )
{%- endmacro %}
