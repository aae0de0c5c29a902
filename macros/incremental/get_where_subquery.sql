{#- dbt's `where` of data tests (the filtered relation a generic test reads),
    plus one named scope: `where: __loaded_since_previous_build__` stands for
    loaded_since_previous_build(<the tested model>). dbt cannot call a
    project macro in a generic test's config, so the name is resolved here,
    when the test runs. Any other `where` works as in dbt. A test without a
    `where` on a model replaced conversation by conversation reads the
    conversations its latest build rewrote, when the test allows it
    (is_scoped_to_conversations_refreshed, rewritten_by_latest_build). -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == '__loaded_since_previous_build__' -%}
        {%- set where = loaded_since_previous_build(relation.identifier) -%}
    {%- elif not where and is_scoped_to_conversations_refreshed() -%}
        {%- set where = rewritten_by_latest_build(relation.identifier) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) as dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
