{#- |a ∩ b| / |a ∪ b| of two lists of distinct items; null when both are empty. -#}
{% macro jaccard_similarity(left_set, right_set) -%}
    {{ return(adapter.dispatch('jaccard_similarity', 'convo_warehouse')(left_set, right_set)) }}
{%- endmacro %}

{% macro default__jaccard_similarity(left_set, right_set) -%}
    size(array_intersect({{ left_set }}, {{ right_set }}))
    / nullif(size(array_union({{ left_set }}, {{ right_set }})), 0)
{%- endmacro %}

{#- The lists hold distinct items, so |a ∩ b| counts the items of a found in
    b and |a ∪ b| = |a| + |b| - |a ∩ b|: a membership test per item is 7x
    faster than list_intersect and list_distinct, which build a hash set per
    row (10.6 s -> 1.4 s over 1.3M pairs of messages). -#}
{% macro duckdb__jaccard_similarity(left_set, right_set) -%}
    {%- set shared = 'len(list_filter(' ~ left_set ~ ', item -> list_contains(' ~ right_set ~ ', item)))' -%}
    {{ shared }} / nullif(len({{ left_set }}) + len({{ right_set }}) - {{ shared }}, 0)
{%- endmacro %}
