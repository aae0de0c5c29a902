{#- Read when the model runs, as on_scope_days: literals reach a table's scan (Spark skips
    other load runs' files and partitions), a subquery (`in (select ...)`) only as a join. -#}
{% macro integers_listed(relation, column) -%}
    ({% for value in distinct_values(relation, column) %}{{ value | int }}{{ ', ' if not loop.last }}{% else %}null{% endfor %})
{%- endmacro %}
