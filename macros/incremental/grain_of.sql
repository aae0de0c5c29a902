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
