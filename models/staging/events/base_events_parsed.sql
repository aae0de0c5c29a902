{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
    )
}}
{#- Incremental because parsing JSON is the expensive step: each raw row is
    parsed once, in the run that loaded it. Every rule here depends only on
    the row itself and its load time, so an incremental run and a full refresh
    give the same rows. A property column added to the lists below appears in
    an existing warehouse without a full refresh (append_new_columns); rows
    parsed before it keep null there until `dbt build --full-refresh`. -#}

{%- set text_properties = [
    'device', 'source', 'language', 'environment', 'page_url', 'agent_id', 'content',
    'intent', 'model', 'tool_name', 'topic', 'reason', 'rating', 'comment', 'goal',
    'funnel', 'stage', 'test_name', 'variant', 'button', 'flow_name',
] -%}
{%- set number_properties = ['lead_score', 'intent_confidence', 'sentiment', 'latency_ms'] -%}
{%- set integer_properties = [
    'turn', 'message_length', 'response_length', 'total_turns', 'abandoned_at_turn',
    'input_tokens', 'output_tokens',
] -%}
{%- set all_properties = text_properties + number_properties + integer_properties -%}
{%- set raw_columns = [
    ('event_id', 'raw_event_id'), ('conversation_id', 'raw_conversation_id'),
    ('session_id', 'raw_session_id'), ('user_id', 'raw_user_id'),
    ('customer_id', 'raw_customer_id'), ('event_type', 'raw_event_type_text'),
    ('event_timestamp', 'raw_timestamp'), ('channel', 'raw_channel'),
    ('properties', 'raw_properties'),
] -%}

with

raw_events as (
    select
        load_id,
        loaded_at,
        source_file,
        row_number,
        event_id,
        conversation_id,
        session_id,
        user_id,
        customer_id,
        event_type,
        event_timestamp,
        channel,
        properties,
        raw_record,
        parse_error
    from {{ source('raw', 'events') }}
    {% if is_incremental() %}
        where load_id > (select coalesce(max(this.load_id), 0) from {{ this }} as this)
    {% endif %}
),

fields_cleaned as (
    select
        raw_events.*,
        nullif(trim(raw_events.event_id), '') as clean_event_id,
        coalesce(
            nullif(trim(raw_events.conversation_id), ''),
            nullif(trim(raw_events.session_id), '')
        ) as clean_conversation_id,
        coalesce(
            nullif(trim(raw_events.user_id), ''),
            nullif(trim(raw_events.customer_id), '')
        ) as clean_user_id,
        nullif(trim(raw_events.event_type), '') as clean_event_type,
        nullif(trim(raw_events.event_timestamp), '') as clean_timestamp,
        nullif(trim(raw_events.channel), '') as clean_channel,
        {{ parse_event_timestamp('raw_events.event_timestamp') }} as parsed_event_at,
        {{ json_object_kind('raw_events.properties') }} as properties_kind
    from raw_events
),

properties_decoded as (
    select
        fields_cleaned.*,
        case
            when fields_cleaned.properties is null then '{}'
            when fields_cleaned.properties_kind = 'object' then fields_cleaned.properties
            when
                fields_cleaned.properties_kind = 'string'
                and {{ json_object_kind(json_unquote('fields_cleaned.properties')) }} = 'object'
                then {{ json_unquote('fields_cleaned.properties') }}
        end as properties_object
    from fields_cleaned
),

rows_validated as (
    select
        properties_decoded.*,
        case
            when properties_decoded.parse_error like 'unreadable file%' then 'unreadable_file'
            when properties_decoded.parse_error is not null then 'unreadable_line'
            when
                properties_decoded.clean_event_id is null
                or properties_decoded.clean_conversation_id is null
                or properties_decoded.clean_event_type is null
                or properties_decoded.clean_timestamp is null
                then 'missing_required_field'
            when properties_decoded.parsed_event_at is null then 'unparseable_timestamp'
            when
                properties_decoded.parsed_event_at
                > {{ dbt.dateadd('hour', var('max_future_hours'), 'properties_decoded.loaded_at') }}
                then 'future_timestamp'
            when properties_decoded.properties_object is null then 'properties_not_object'
        end as rejection_reason
    from properties_decoded
),

rows_explained as (
    select
        rows_validated.*,
        case rows_validated.rejection_reason
            when 'unreadable_file' then rows_validated.parse_error
            when 'unreadable_line' then rows_validated.parse_error
            when 'missing_required_field'
                then 'missing required field(s): ' || concat_ws(
                    ', ',
                    case when rows_validated.clean_event_id is null then 'event_id' end,
                    case when rows_validated.clean_conversation_id is null then 'conversation_id' end,
                    case when rows_validated.clean_event_type is null then 'event_type' end,
                    case when rows_validated.clean_timestamp is null then 'timestamp' end
                )
            when 'unparseable_timestamp' then 'unparseable timestamp: ' || rows_validated.clean_timestamp
            when 'future_timestamp'
                then
                    'timestamp ' || rows_validated.clean_timestamp
                    || ' is more than {{ var("max_future_hours") }} hours after load time '
                    || cast(rows_validated.loaded_at as {{ dbt.type_string() }})
            when 'properties_not_object' then
                'properties is not a JSON object: '
                || coalesce(rows_validated.properties_kind, 'invalid JSON')
        end as rejection_detail,
        case
            when rows_validated.properties_object is not null
                then {{ json_text_list('rows_validated.properties_object', all_properties) }}
        end as property_values
    from rows_validated
),

final as (
    select
        rows_explained.load_id,
        rows_explained.loaded_at,
        rows_explained.source_file,
        rows_explained.row_number,
        rows_explained.clean_event_id as event_id,
        rows_explained.clean_conversation_id as conversation_id,
        rows_explained.clean_user_id as user_id,
        rows_explained.clean_event_type as raw_event_type,
        rows_explained.parsed_event_at as event_at,
        rows_explained.clean_channel as channel,
        rows_explained.properties_object as properties,
        {%- for name in all_properties %}
            {%- set item = list_item('rows_explained.property_values', loop.index) %}
            {%- if name in number_properties %}
                {{ dbt.safe_cast(item, 'double') }} as {{ name }},
            {%- elif name in integer_properties %}
                {{ dbt.safe_cast(item, dbt.type_int()) }} as {{ name }},
            {%- else %}
                {{ item }} as {{ name }},
            {%- endif %}
        {%- endfor %}
        rows_explained.rejection_reason,
        rows_explained.rejection_detail,
        -- the raw text, kept for quarantined rows only (valid rows have it typed)
        {%- for raw_column, raw_alias in raw_columns %}
            case
                when rows_explained.rejection_reason is not null then rows_explained.{{ raw_column }}
            end as {{ raw_alias }},
        {%- endfor %}
        case
            when rows_explained.rejection_reason is not null then rows_explained.raw_record
        end as raw_record
    from rows_explained
)

select * from final
