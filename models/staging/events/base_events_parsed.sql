{#- Incremental because parsing JSON is the expensive step: each raw row is
    parsed once, in the run that loaded it. Every rule here depends only on
    the row itself, its load time and seeds/field_aliases.csv, so an
    incremental run and a full refresh give the same rows: when the field
    aliases change (field_aliases_fingerprint), every load run is parsed
    again (a changed seed rebuilds its children whole: docs/incremental.md).
    Incremental by load run (replace_scope on load_id): a run parses the
    load runs of scope_load_runs. On Spark, partitioned by load_id (a run
    writes the partitions of its load runs). -#}
{{ config(
    materialized='incremental',
    incremental_strategy=('insert_overwrite' if target.type == 'spark' else 'replace_scope'),
    partition_by=('load_id' if target.type == 'spark' else none),
    on_schema_change='fail',
    unique_key=['load_id', 'source_file', 'row_number'],
    scope_key='load_id',
    scope_model='scope_load_runs',
) }}

{#- The properties with a column of their own (event_property_columns): the
    stored properties object keeps only the fields its columns cannot give
    back as sent (properties_without_columns, docs/staging.md#what-is-stored). -#}
{%- set property_columns = event_property_columns() -%}
{%- set all_properties = property_columns.text + property_columns.number + property_columns.integer -%}
{#- Every field seeds/field_aliases.csv may map to. -#}
{%- set aliasable_fields = [
    'event_id', 'conversation_id', 'user_id', 'event_type', 'timestamp', 'channel', 'properties',
] -%}
{#- Identifiers sent as one of these JSON kinds are quarantined. -#}
{%- set invalid_kinds = "('object', 'array', 'boolean')" -%}

{#- an incremental build's load runs, as literals (integers_listed) -#}
{%- set load_runs_in_scope = ref('scope_load_runs') %}
{%- set load_ids_in_scope = integers_listed(load_runs_in_scope, 'load_id') if is_incremental() else none %}

with

field_aliases as (
    select
        alias_field,
        canonical_field
    from {{ ref('stg_seeds__field_aliases') }}
),

field_aliases_fingerprinted as (
    {{ field_aliases_fingerprint_query() }}
),

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
        parse_error,
        typed_fields
    from {{ source('raw', 'events') }}
    {%- if is_incremental() %}
    where load_id in {{ load_ids_in_scope }}
    {%- endif %}
),

-- The rows whose loader kept typed_fields (a field without a column, or an
-- identifier that is not a JSON string), read on their own: raw_events is
-- then read once, as a stream (a CTE read twice is stored whole first:
-- 11 s of CPU over 10M events).
raw_typed_fields as (
    select
        load_id,
        source_file,
        row_number,
        typed_fields
    from {{ source('raw', 'events') }}
    where
        typed_fields is not null
    {%- if is_incremental() %}
        and load_id in {{ load_ids_in_scope }}
    {%- endif %}
),

-- Fields sent under a name of seeds/field_aliases.csv (the loader keeps them
-- in typed_fields): per row and canonical field, the first alias present by
-- alias name. Rows without typed_fields (the usual case) skip this.
aliases_present as (
    select
        raw_typed_fields.load_id,
        raw_typed_fields.source_file,
        raw_typed_fields.row_number,
        field_aliases.canonical_field,
        field_aliases.alias_field,
        {{ json_value_at('raw_typed_fields.typed_fields', 'field_aliases.alias_field') }} as alias_json
    from raw_typed_fields
    cross join field_aliases
),

aliases_chosen as (
    select aliases_present.*
    from aliases_present
    where nullif(trim({{ json_unquote('aliases_present.alias_json') }}), '') is not null
    qualify row_number() over (
        partition by
            aliases_present.load_id,
            aliases_present.source_file,
            aliases_present.row_number,
            aliases_present.canonical_field
        order by aliases_present.alias_field
    ) = 1
),

aliases_pivoted as (
    select
        aliases_chosen.load_id,
        aliases_chosen.source_file,
        {%- for field in ['event_id', 'conversation_id', 'user_id'] %}
            max(case when aliases_chosen.canonical_field = '{{ field }}' then aliases_chosen.alias_field end)
                as {{ field }}_alias,
        {%- endfor %}
        {%- for field in aliasable_fields %}
            max(case when aliases_chosen.canonical_field = '{{ field }}' then aliases_chosen.alias_json end)
                as {{ field }}_alias_json,
        {%- endfor %}
        aliases_chosen.row_number
    from aliases_chosen
    group by
        aliases_chosen.load_id,
        aliases_chosen.source_file,
        aliases_chosen.row_number
),

-- Each field as sent: the canonical name wins, then the contract's v1 alias
-- (session_id, customer_id), then the seed's aliases. Identifiers keep the
-- name they were sent under and their JSON kind (the loader's typed_fields
-- holds the ones not sent as text).
fields_resolved as (
    select
        raw_events.*,
        case
            when nullif(trim(raw_events.event_id), '') is not null then 'event_id'
            else aliases_pivoted.event_id_alias
        end as event_id_sent_as,
        case
            when nullif(trim(raw_events.conversation_id), '') is not null then 'conversation_id'
            when nullif(trim(raw_events.session_id), '') is not null then 'session_id'
            else aliases_pivoted.conversation_id_alias
        end as conversation_id_sent_as,
        case
            when nullif(trim(raw_events.user_id), '') is not null then 'user_id'
            when nullif(trim(raw_events.customer_id), '') is not null then 'customer_id'
            else aliases_pivoted.user_id_alias
        end as user_id_sent_as,
        coalesce(
            nullif(trim(raw_events.event_id), ''),
            trim({{ json_unquote('aliases_pivoted.event_id_alias_json') }})
        ) as event_id_text,
        coalesce(
            nullif(trim(raw_events.conversation_id), ''),
            nullif(trim(raw_events.session_id), ''),
            trim({{ json_unquote('aliases_pivoted.conversation_id_alias_json') }})
        ) as conversation_id_text,
        coalesce(
            nullif(trim(raw_events.user_id), ''),
            nullif(trim(raw_events.customer_id), ''),
            trim({{ json_unquote('aliases_pivoted.user_id_alias_json') }})
        ) as user_id_text,
        coalesce(
            nullif(trim(raw_events.event_type), ''),
            trim({{ json_unquote('aliases_pivoted.event_type_alias_json') }})
        ) as event_type_text,
        coalesce(
            nullif(trim(raw_events.event_timestamp), ''),
            trim({{ json_unquote('aliases_pivoted.timestamp_alias_json') }})
        ) as timestamp_text,
        coalesce(
            nullif(trim(raw_events.channel), ''),
            trim({{ json_unquote('aliases_pivoted.channel_alias_json') }})
        ) as channel_text,
        coalesce(raw_events.properties, aliases_pivoted.properties_alias_json) as properties_text,
        aliases_pivoted.event_id_alias_json,
        aliases_pivoted.conversation_id_alias_json,
        aliases_pivoted.user_id_alias_json
    from raw_events
    left join aliases_pivoted
        on
            raw_events.load_id = aliases_pivoted.load_id
            and raw_events.source_file = aliases_pivoted.source_file
            and raw_events.row_number = aliases_pivoted.row_number
),

identifiers_typed as (
    select
        fields_resolved.*,
        {{ sent_json_kind('fields_resolved', 'event_id') }} as event_id_kind,
        {{ sent_json_kind('fields_resolved', 'conversation_id') }} as conversation_id_kind,
        {{ sent_json_kind('fields_resolved', 'user_id') }} as user_id_kind
    from fields_resolved
),

fields_cleaned as (
    select
        identifiers_typed.*,
        {{ identifier_text('identifiers_typed', 'event_id') }} as clean_event_id,
        {{ identifier_text('identifiers_typed', 'conversation_id') }} as clean_conversation_id,
        {{ identifier_text('identifiers_typed', 'user_id') }} as clean_user_id,
        {{ identifier_type_error('identifiers_typed', 'event_id', invalid_kinds) }} as event_id_type_error,
        {{ identifier_type_error('identifiers_typed', 'conversation_id', invalid_kinds) }}
            as conversation_id_type_error,
        {{ identifier_type_error('identifiers_typed', 'user_id', invalid_kinds) }} as user_id_type_error,
        identifiers_typed.event_type_text as clean_event_type,
        identifiers_typed.timestamp_text as clean_timestamp,
        identifiers_typed.channel_text as clean_channel,
        {{ parse_event_timestamp('identifiers_typed.timestamp_text') }} as parsed_event_at,
        {{ json_object_kind('identifiers_typed.properties_text') }} as properties_kind
    from identifiers_typed
),

properties_decoded as (
    select
        fields_cleaned.*,
        case
            when fields_cleaned.properties_text is null then '{}'
            when fields_cleaned.properties_kind = 'object' then fields_cleaned.properties_text
            when
                fields_cleaned.properties_kind = 'string'
                and {{ json_object_kind(json_unquote('fields_cleaned.properties_text')) }} = 'object'
                then {{ json_unquote('fields_cleaned.properties_text') }}
        end as properties_object
    from fields_cleaned
),

-- Read twice, by the rows' path and by the delivery keys'. DuckDB computes it
-- for each reader (the keys' copy needs only a few columns; stored whole,
-- every wide row would be written to memory and read back). Spark computes
-- it once (evaluated_once): a copy per reader repeats the parse's shuffles.
rows_validated as {{ cte_not_materialized() }} (
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
            when
                coalesce(
                    properties_decoded.event_id_type_error,
                    properties_decoded.conversation_id_type_error,
                    properties_decoded.user_id_type_error
                ) is not null
                then 'invalid_field_type'
            when properties_decoded.parsed_event_at is null then 'unparseable_timestamp'
            when
                properties_decoded.parsed_event_at
                > {{ dbt.dateadd('hour', var('max_future_hours'), 'properties_decoded.loaded_at') }}
                then 'future_timestamp'
            when properties_decoded.properties_object is null then 'properties_not_object'
        end as rejection_reason
    from properties_decoded
    where {{ evaluated_once() }}
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
            when 'invalid_field_type'
                then 'identifier not text or a number: ' || concat_ws(
                    ', ',
                    rows_validated.event_id_type_error,
                    rows_validated.conversation_id_type_error,
                    rows_validated.user_id_type_error
                )
            when 'unparseable_timestamp' then 'unparseable timestamp: ' || rows_validated.clean_timestamp
            when 'future_timestamp'
                then
                    'timestamp ' || rows_validated.clean_timestamp
                    || {{ string_literal(' is more than ' ~ var('max_future_hours') ~ ' hours after load time ') }}
                    || cast(rows_validated.loaded_at as {{ dbt.type_string() }})
            when 'properties_not_object' then
                'properties is not a JSON object: '
                || coalesce(rows_validated.properties_kind, 'invalid JSON')
        end as rejection_detail,
        case
            when rows_validated.properties_object is not null
                then {{ json_text_fields('rows_validated.properties_object', all_properties) }}
        end as property_values
    from rows_validated
),

rows_typed as (
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
        {{ properties_without_columns('rows_explained.properties_object', 'rows_explained.property_values') }}
            as properties,
        {%- for name in all_properties %}
            {%- set item = json_text_field('rows_explained.property_values', name) %}
            {%- if name in property_columns.number %}
                {{ dbt.safe_cast(item, 'double') }} as {{ name }},
            {%- elif name in property_columns.integer %}
                {{ dbt.safe_cast(item, dbt.type_int()) }} as {{ name }},
            {%- else %}
                {{ item }} as {{ name }},
            {%- endif %}
        {%- endfor %}
        rows_explained.rejection_reason,
        rows_explained.rejection_detail,
        field_aliases_fingerprinted.field_aliases_fingerprint
    from rows_explained
    cross join field_aliases_fingerprinted
),

-- First delivery: among the valid copies of an event_id the first delivered
-- wins (earliest load run, then file path, then row number), so a bad copy
-- never wins. It is decided when a load run is parsed and never changes:
-- every load run parsed later is a later delivery.
new_delivery_keys as (
    select
        rows_validated.clean_event_id as event_id,
        rows_validated.load_id,
        rows_validated.source_file,
        rows_validated.row_number
    from rows_validated
    where rows_validated.rejection_reason is null
),

-- the first deliveries of those event_ids in the load runs parsed before:
-- none in a full build, which parses every load run here
earlier_deliveries as (
    {%- if is_incremental() %}
        select
            earlier.event_id,
            earlier.load_id,
            earlier.source_file,
            earlier.row_number
        from {{ this }} as earlier
        where
            earlier.is_first_delivery
            and earlier.load_id not in {{ load_ids_in_scope }}
            and earlier.event_id in (select new_delivery_keys.event_id from new_delivery_keys)
    {%- else %}
        select * from new_delivery_keys
        where 1 = 0
    {%- endif %}
),

delivery_keys as (
    select * from new_delivery_keys
    union all
    select * from earlier_deliveries
),

-- Only repeated event_ids are ranked (a window over every wide row is the
-- slowest way to do this); the later copies are then flagged.
repeated_event_ids as (
    select delivery_keys.event_id
    from delivery_keys
    group by delivery_keys.event_id
    having count(*) > 1
),

later_deliveries as (
    select delivery_keys.*
    from delivery_keys
    inner join repeated_event_ids
        on delivery_keys.event_id = repeated_event_ids.event_id
    qualify row_number() over (
        partition by delivery_keys.event_id
        order by delivery_keys.load_id, delivery_keys.source_file, delivery_keys.row_number
    ) > 1
),

final as (
    select
        rows_typed.*,
        rows_typed.rejection_reason is null and later_deliveries.event_id is null as is_first_delivery
    from rows_typed
    left join later_deliveries
        on
            rows_typed.event_id = later_deliveries.event_id
            and rows_typed.load_id = later_deliveries.load_id
            and rows_typed.source_file = later_deliveries.source_file
            and rows_typed.row_number = later_deliveries.row_number
)

select * from final
