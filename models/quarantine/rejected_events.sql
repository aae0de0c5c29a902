-- rejected_event_reasons holds each refused row's verdict; its text as the
-- loader copied it is in raw.events, the one copy of the raw rows, joined
-- here by the row's key.

with

rows_rejected as (
    select
        load_id,
        loaded_at,
        source_file,
        row_number,
        reason,
        reason_detail
    from {{ ref('rejected_event_reasons') }}
),

raw_rows as (
    select
        load_id,
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
        typed_fields
    from {{ source('raw', 'events') }}
),

final as (
    select
        rows_rejected.load_id,
        rows_rejected.loaded_at,
        rows_rejected.source_file,
        rows_rejected.row_number,
        rows_rejected.reason,
        rows_rejected.reason_detail,
        raw_rows.event_id,
        raw_rows.conversation_id,
        raw_rows.session_id,
        raw_rows.user_id,
        raw_rows.customer_id,
        raw_rows.event_type,
        raw_rows.event_timestamp,
        raw_rows.channel,
        raw_rows.properties,
        coalesce(
            raw_rows.raw_record,
            {{ raw_row_as_json('raw_rows') }}
        ) as raw_record
    -- The few rejected rows are the join's build side (the right one:
    -- profiles.yml keeps the planned sides), so their keys prune the scan of
    -- raw.events to the load runs they are in; with raw.events on the right,
    -- a check of one load run hashed every raw row (12 s at 10M events).
    -- Every parsed row has its raw row: base_events_parsed is parsed from
    -- raw.events, whose rows are never deleted, and its key is raw.events'
    -- (lib/landing/registry.py): one row here per rejected_event_reasons row.
    from raw_rows
    inner join rows_rejected
        on
            raw_rows.load_id = rows_rejected.load_id
            and raw_rows.source_file = rows_rejected.source_file
            and raw_rows.row_number = rows_rejected.row_number
)

select * from final
