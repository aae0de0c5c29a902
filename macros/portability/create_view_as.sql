{#- DuckDB views: dbt names every relation with the warehouse file's catalog
    ("warehouse"."staging"."base_events_parsed"), and DuckDB 1.5 keeps that
    name in the stored view, so the view fails once the file is opened
    under another name (a copy, a backup, an ATTACH ... AS). A view's own
    catalog comes first when it is read, so the catalog is left out of its
    references: the views work under any file name
    (tests/test_staging_stored_once.py). dbt-duckdb's contract check and
    sql_header are kept. -#}
{% macro duckdb__create_view_as(relation, sql) -%}
    {%- if config.get('contract').enforced -%}
        {{ get_assert_columns_equivalent(sql) }}
    {%- endif -%}
    {%- set sql_header = config.get('sql_header', none) -%}
    {%- set own_catalog = adapter.quote(relation.database) ~ '.' -%}
    {{ sql_header if sql_header is not none }}
    create view {{ relation }} as (
        {{ sql | replace(own_catalog, '') }}
    );
{%- endmacro %}
