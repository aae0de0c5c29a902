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
{%- set grain = columns %}
{%- if grain is none and execute %}
    {#- a test is handed its model's relation, not its config: the model is found in dbt's graph -#}
    {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('schema', 'equalto', model.schema) | selectattr('alias', 'equalto', model.identifier) | first %}
    {%- set unique_key = node.config.get('unique_key') if node is defined else none %}
    {%- if not unique_key %}
        {{ exceptions.raise_compiler_error(
            'grain: ' ~ model ~ ' is no model of this project with a unique_key config; give the test its columns') }}
    {%- endif %}
    {%- set grain = [unique_key] if unique_key is string else unique_key %}
{%- endif %}

select
    {%- for column in grain or [] %}
    {{ column }},
    {%- endfor %}
    count(*) as occurrences
from {{ model }}
{%- if grain %}
group by {{ grain | join(', ') }}
{%- endif %}
having count(*) > 1

{% endtest %}
