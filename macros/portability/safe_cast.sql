{#- dbt's safe_cast is a plain cast on DuckDB and Spark, which fails the
    whole build on one property that is not a number (a `sentiment` of
    "very bad"): these return null for it instead, as the name promises. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}

{% macro spark__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
