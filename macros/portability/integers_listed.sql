{#- Read when the model runs, as dates_listed: a list of literals reaches a
    table's scan (Spark skips the Parquet files and partitions of other
    values: raw.events keeps each load run in files of its own), where a
    subquery (`in (select ...)`) reaches it only as a join. -#}
{% macro integers_listed(relation, column) -%}
    {%- set values = run_query('select distinct ' ~ column ~ ' from ' ~ relation ~ ' order by 1').columns[0].values()
        if execute else [] -%}
    ({% for value in values %}{{ value | int }}{{ ', ' if not loop.last }}{% else %}null{% endfor %})
{%- endmacro %}
