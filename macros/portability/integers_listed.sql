{#- Read when the model runs, as dates_listed: a list of literals reaches a
    table's scan (Spark skips the Parquet files and partitions of other
    values: raw.events keeps each load run in files of its own), where a
    subquery (`in (select ...)`) reaches it only as a join. -#}
{% macro integers_listed(relation, column) -%}
    ({% for value in distinct_values(relation, column) %}{{ value | int }}{{ ', ' if not loop.last }}{% else %}null{% endfor %})
{%- endmacro %}
