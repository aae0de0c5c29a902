{#- The hint that a CTE read twice is computed for each reader rather than
    stored whole first (DuckDB stores such a CTE by default; Spark inlines
    every CTE and has no hint). -#}
{% macro cte_not_materialized() -%}
    {{ return(adapter.dispatch('cte_not_materialized', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__cte_not_materialized() -%}
{%- endmacro %}

{% macro duckdb__cte_not_materialized() -%}
    not materialized
{%- endmacro %}
