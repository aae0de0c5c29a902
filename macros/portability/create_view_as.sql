{#- A DuckDB view that reads from its own catalog: DuckDB stores the catalog
    a view names ("warehouse"."staging"...), so a view that named it would
    fail in a warehouse file opened under another name (a copy, a test's
    warehouse, a snapshot). Otherwise dbt-duckdb's create_view_as. -#}
{% macro duckdb__create_view_as(relation, sql) -%}
    {%- if config.get('contract').enforced -%}
        {{ get_assert_columns_equivalent(sql) }}
    {%- endif -%}
    {%- set sql_header = config.get('sql_header', none) -%}
    {{ sql_header if sql_header is not none }}
    create view {{ relation }} as (
        {{ sql | replace(adapter.quote(relation.database) ~ '.', '') }}
    );
{%- endmacro %}
