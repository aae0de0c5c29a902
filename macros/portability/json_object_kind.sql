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

{#- Spark has no json_type(): objects and arrays are told apart by functions
    that return null for anything else (or invalid JSON), scalars by form. -#}
{% macro spark__json_object_kind(json_text_expression) -%}
    case
        when json_object_keys(trim({{ json_text_expression }})) is not null then 'object'
        when json_array_length(trim({{ json_text_expression }})) is not null then 'array'
        when length(trim({{ json_text_expression }})) >= 2
            and left(trim({{ json_text_expression }}), 1) = '"'
            and right(trim({{ json_text_expression }}), 1) = '"' then 'string'
        when trim({{ json_text_expression }}) in ('true', 'false') then 'boolean'
        when trim({{ json_text_expression }}) = 'null' then 'null'
        when {{ regex_full_match('trim(' ~ json_text_expression ~ ')', '-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][+-]?[0-9]+)?') }} then 'number'
    end
{%- endmacro %}
