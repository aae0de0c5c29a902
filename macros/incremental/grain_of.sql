{#- The unique_key config of the model whose relation is `relation`, as a
    list of columns: the grain test's columns when it is given none. A test
    is handed its model's relation, not its config, so the model is found in
    dbt's graph by schema and name. -#}
{% macro grain_of(relation) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.schema == relation.schema
            and (node.alias or node.name) == relation.identifier -%}
        {%- set unique_key = node.config.get('unique_key') -%}
        {%- if not unique_key -%}
            {{ exceptions.raise_compiler_error(
                'grain: ' ~ node.name ~ ' has no unique_key config; give the test its columns'
            ) }}
        {%- endif -%}
        {{ return([unique_key] if unique_key is string else unique_key) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error('grain: no model of this project is ' ~ relation) }}
{%- endmacro %}
