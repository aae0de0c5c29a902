{#- The model's grain: fails for every combination of `columns` that more
    than one row holds, over the whole table. Without `columns`, the grain is
    the model's unique_key config: an incremental model states its grain once,
    in its own config(), which the replace_scope strategy checks on every row
    a run inserts, and this test reads. `columns: []`: the model holds at most
    one row.

    Tagged `grain`: it reads the whole table, so production runs leave it out
    (dbt_commands.production_build) and `make dbt-test` runs it. -#}
{% test grain(model, columns=none) %}
{{ config(tags=['grain']) }}
{%- set grain = columns if columns is not none else grain_of(model) %}

select
    {%- for column in grain %}
    {{ column }},
    {%- endfor %}
    count(*) as occurrences
from {{ model }}
{%- if grain %}
group by {{ grain | join(', ') }}
{%- endif %}
having count(*) > 1

{% endtest %}
