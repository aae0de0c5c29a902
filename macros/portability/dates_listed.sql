{#- Read when the model runs, so a day filter is literals: DuckDB pushes them
    into the scans of a view the model reads (a subquery stops at its joins),
    Spark prunes partitions by them. Their ends as a range too: DuckDB's scan
    filters by a range before it reads a row's other columns. -#}
{% macro on_scope_days(column, scope_days) -%}
    {%- set days = distinct_values(scope_days, 'event_date') -%}
    {{ column }} in {{ dates_listed(days) }}
    {%- if days %} and {{ column }} between {{ dates_listed(days[:1]) }} and {{ dates_listed(days[-1:]) }}{% endif %}
{%- endmacro %}

{% macro dates_listed(days) -%}
    ({% for day in days %}cast('{{ (day | string)[:10] }}' as {{ type_date() }}){{ ', ' if not loop.last }}{% else %}cast(null as {{ type_date() }}){% endfor %})
{%- endmacro %}

{% macro distinct_values(relation, column) -%}
    {{ return(run_query('select distinct ' ~ column ~ ' from ' ~ relation ~ ' order by 1').columns[0].values() if execute else []) }}
{%- endmacro %}
