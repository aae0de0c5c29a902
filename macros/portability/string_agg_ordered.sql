{#- Aggregate: the non-null values joined by `separator` (a SQL string
    literal), in the order of `order_by`. -#}
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

{% macro duckdb__string_agg_ordered(value, separator, order_by) -%}
    string_agg({{ value }}, {{ separator }} order by {{ order_by }})
{%- endmacro %}
