{#- A readable reconstruction of a raw row (contract field -> text value) for
    rows whose original line was not kept verbatim, with the fields the loader
    kept with their JSON types (typed_fields: aliases such as `id`,
    identifiers sent as numbers or objects) laid over it. -#}
{% macro raw_row_as_json(relation_alias) -%}
    {{ return(adapter.dispatch('raw_row_as_json', 'convo_warehouse')(relation_alias)) }}
{%- endmacro %}

{% macro default__raw_row_as_json(relation_alias) -%}
    to_json(named_struct(
        'event_id', {{ relation_alias }}.event_id,
        'conversation_id', {{ relation_alias }}.conversation_id,
        'session_id', {{ relation_alias }}.session_id,
        'user_id', {{ relation_alias }}.user_id,
        'customer_id', {{ relation_alias }}.customer_id,
        'event_type', {{ relation_alias }}.event_type,
        'timestamp', {{ relation_alias }}.event_timestamp,
        'channel', {{ relation_alias }}.channel,
        'properties', {{ relation_alias }}.properties
    ))
{%- endmacro %}

{% macro duckdb__raw_row_as_json(relation_alias) -%}
    cast(json_merge_patch(json_object(
        'event_id', {{ relation_alias }}.event_id,
        'conversation_id', {{ relation_alias }}.conversation_id,
        'session_id', {{ relation_alias }}.session_id,
        'user_id', {{ relation_alias }}.user_id,
        'customer_id', {{ relation_alias }}.customer_id,
        'event_type', {{ relation_alias }}.event_type,
        'timestamp', {{ relation_alias }}.event_timestamp,
        'channel', {{ relation_alias }}.channel,
        'properties', {{ relation_alias }}.properties
    ), coalesce({{ relation_alias }}.typed_fields, '{}')) as {{ dbt.type_string() }})
{%- endmacro %}
