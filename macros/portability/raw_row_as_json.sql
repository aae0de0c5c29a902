{% macro raw_row_as_json(relation_alias) -%}
    {%- set arguments = [] -%}
    {%- for field, column in [
        ('event_id', 'event_id'), ('conversation_id', 'conversation_id'), ('session_id', 'session_id'),
        ('user_id', 'user_id'), ('customer_id', 'customer_id'), ('event_type', 'event_type'),
        ('timestamp', 'event_timestamp'), ('channel', 'channel'), ('properties', 'properties'),
    ] -%}
        {%- do arguments.append("'" ~ field ~ "', " ~ relation_alias ~ "." ~ column) -%}
    {%- endfor -%}
    {{ return(adapter.dispatch('raw_row_as_json', 'convo_warehouse')(relation_alias, arguments | join(', '))) }}
{%- endmacro %}

{% macro default__raw_row_as_json(relation_alias, arguments) -%}
    to_json(named_struct({{ arguments }}))
{%- endmacro %}

{% macro duckdb__raw_row_as_json(relation_alias, arguments) -%}
    cast(json_merge_patch(
        json_object({{ arguments }}), coalesce({{ relation_alias }}.typed_fields, '{}')
    ) as {{ dbt.type_string() }})
{%- endmacro %}
