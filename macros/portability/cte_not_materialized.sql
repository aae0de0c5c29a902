{% macro cte_not_materialized() -%}
    {{ return(adapter.dispatch('cte_not_materialized', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__cte_not_materialized() -%}
{%- endmacro %}

{% macro duckdb__cte_not_materialized() -%}
    not materialized
{%- endmacro %}

{% macro evaluated_once() -%}
    {{ return(adapter.dispatch('evaluated_once', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__evaluated_once() -%}
    true
{%- endmacro %}

{% macro spark__evaluated_once() -%}
    rand() >= 0
{%- endmacro %}
