{#- The kind of JSON value held as text: 'object', 'array', 'string',
    'number', 'boolean', 'null', or null when the text is null or not valid
    JSON. -#}
{% macro json_object_kind(json_text_expression) -%}
    {{ return(adapter.dispatch('json_object_kind', 'convo_warehouse')(json_text_expression)) }}
{%- endmacro %}

{% macro duckdb__json_object_kind(json_text_expression) -%}
    case
        when {{ json_text_expression }} is null or not json_valid({{ json_text_expression }}) then null
        else case json_type({{ json_text_expression }})
            when 'OBJECT' then 'object'
            when 'ARRAY' then 'array'
            when 'VARCHAR' then 'string'
            when 'BOOLEAN' then 'boolean'
            when 'NULL' then 'null'
            else 'number'
        end
    end
{%- endmacro %}
