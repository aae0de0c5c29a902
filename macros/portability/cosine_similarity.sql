{% macro cosine_similarity(left_list, right_list) -%}
    {{ return(adapter.dispatch('cosine_similarity', 'convo_warehouse')(left_list, right_list)) }}
{%- endmacro %}

{% macro default__cosine_similarity(left_list, right_list) -%}
    aggregate(zip_with({{ left_list }}, {{ right_list }}, (x, y) -> cast(x as double) * y), cast(0 as double), (total, value) -> total + value)
    / nullif(
        sqrt(aggregate(transform({{ left_list }}, x -> cast(x as double) * x), cast(0 as double), (total, value) -> total + value))
        * sqrt(aggregate(transform({{ right_list }}, x -> cast(x as double) * x), cast(0 as double), (total, value) -> total + value)),
        0
    )
{%- endmacro %}

{% macro duckdb__cosine_similarity(left_list, right_list) -%}
    cast(list_cosine_similarity(
        cast({{ left_list }} as double[]), cast({{ right_list }} as double[])
    ) as double)
{%- endmacro %}
