{#- |a ∩ b| / |a ∪ b| of two lists of distinct items; null when both are empty. -#}
{% macro jaccard_similarity(left_set, right_set) -%}
    {{ return(adapter.dispatch('jaccard_similarity', 'convo_warehouse')(left_set, right_set)) }}
{%- endmacro %}

{% macro default__jaccard_similarity(left_set, right_set) -%}
    size(array_intersect({{ left_set }}, {{ right_set }}))
    / nullif(size(array_union({{ left_set }}, {{ right_set }})), 0)
{%- endmacro %}

{% macro duckdb__jaccard_similarity(left_set, right_set) -%}
    len(list_intersect({{ left_set }}, {{ right_set }}))
    / nullif(len(list_distinct(list_concat({{ left_set }}, {{ right_set }}))), 0)
{%- endmacro %}
