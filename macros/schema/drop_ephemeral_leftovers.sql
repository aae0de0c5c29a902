{#- A model made ephemeral leaves the table an earlier version of the
    project built for it: nothing reads it any more, but it keeps its space
    in the warehouse file. Drops the relation of every ephemeral model that
    still exists (one statement each, none on a warehouse without any). -#}
{% macro drop_ephemeral_leftovers() %}
    {%- if execute %}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.materialized == 'ephemeral' %}
            {%- set leftover = adapter.get_relation(
                database=node.database, schema=node.schema, identifier=node.alias
            ) %}
            {%- if leftover is not none %}
                {% do log('dropping ' ~ leftover ~ ': ' ~ node.name ~ ' is ephemeral now', info=true) %}
                {% do adapter.drop_relation(leftover) %}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
{% endmacro %}
