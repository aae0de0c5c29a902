{% macro cte_not_materialized() -%}
    {{ return(adapter.dispatch('cte_not_materialized', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__cte_not_materialized() -%}
{%- endmacro %}

{% macro duckdb__cte_not_materialized() -%}
    not materialized
{%- endmacro %}

{#- A condition every row meets, non-deterministic on Spark: there a CTE that
    several parts of a query read is evaluated for each of them, unless it is
    non-deterministic, when Spark evaluates it once so that all read the same
    rows. `true` elsewhere. -#}
{% macro evaluated_once() -%}
    {{ return(adapter.dispatch('evaluated_once', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__evaluated_once() -%}
    true
{%- endmacro %}

{% macro spark__evaluated_once() -%}
    rand() >= 0
{%- endmacro %}
