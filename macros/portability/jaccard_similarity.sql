{% macro jaccard_similarity(left_set, right_set) -%}
    {{ return(adapter.dispatch('jaccard_similarity', 'convo_warehouse')(left_set, right_set)) }}
{%- endmacro %}

{% macro default__jaccard_similarity(left_set, right_set) -%}
    size(array_intersect({{ left_set }}, {{ right_set }}))
    / nullif(size(array_union({{ left_set }}, {{ right_set }})), 0)
{%- endmacro %}

{#- Distinct items, so |a ∪ b| = |a| + |b| - |a ∩ b|: a membership test per item
    beats list_intersect's hash set per row (benchmarks/results/2026-11-23.md). -#}
{% macro duckdb__jaccard_similarity(left_set, right_set) -%}
    {%- set shared = 'len(list_filter(' ~ left_set ~ ', item -> list_contains(' ~ right_set ~ ', item)))' -%}
    {{ shared }} / nullif(len({{ left_set }}) + len({{ right_set }}) - {{ shared }}, 0)
{%- endmacro %}
