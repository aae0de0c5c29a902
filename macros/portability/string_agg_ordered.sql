{% macro string_agg_ordered(value, separator, order_by) -%}
    {{ return(adapter.dispatch('string_agg_ordered', 'convo_warehouse')(value, separator, order_by)) }}
{%- endmacro %}

{% macro default__string_agg_ordered(value, separator, order_by) -%}
    array_join(
        transform(
            array_sort(collect_list(struct({{ order_by }} as sort_key, {{ value }} as item))),
            pair -> pair.item
        ),
        {{ separator }}
    )
{%- endmacro %}

{#- A sorted list, not an ordered string_agg, whose sort buffer per group cannot
    spill (benchmarks/results/2026-11-22.md). -#}
{% macro duckdb__string_agg_ordered(value, separator, order_by) -%}
    array_to_string(
        list_transform(
            list_sort(list(struct_pack(sort_key := {{ order_by }}, item := {{ value }})) filter (where {{ value }} is not null)),
            pair -> pair.item
        ),
        {{ separator }}
    )
{%- endmacro %}
