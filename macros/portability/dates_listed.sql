{#- Read when the model runs, so a day filter is a list of literals. DuckDB
    pushes literals into the scans of a view the model reads, but stops a
    subquery (`in (select ...)`) at the view's joins and aggregates, so that
    view would compute every day. Spark reads only the listed days'
    partitions of a table partitioned by day, where a subquery on an
    unfiltered table (scope_days) prunes none: its dynamic partition pruning
    needs a filter on the other side of the join. -#}
{% macro dates_listed(relation, column) -%}
    ({% for day in distinct_values(relation, column) %}cast('{{ (day | string)[:10] }}' as {{ type_date() }}){{ ', ' if not loop.last }}{% else %}cast(null as {{ type_date() }}){% endfor %})
{%- endmacro %}

{% macro distinct_values(relation, column) -%}
    {{ return(run_query('select distinct ' ~ column ~ ' from ' ~ relation ~ ' order by 1').columns[0].values()
        if execute else []) }}
{%- endmacro %}
