{% macro cte_not_materialized() -%}
    {{ return(adapter.dispatch('cte_not_materialized', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__cte_not_materialized() -%}
{%- endmacro %}

{% macro duckdb__cte_not_materialized() -%}
    not materialized
{%- endmacro %}
