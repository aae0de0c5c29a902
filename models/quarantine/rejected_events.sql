with

rows_rejected as (
    select * from {{ ref('base_events_parsed') }}
    where rejection_reason is not null
),

final as (
    select
        rows_rejected.load_id,
        rows_rejected.loaded_at,
        rows_rejected.source_file,
        rows_rejected.row_number,
        rows_rejected.rejection_reason as reason,
        rows_rejected.rejection_detail as reason_detail,
        rows_rejected.raw_event_id as event_id,
        rows_rejected.raw_conversation_id as conversation_id,
        rows_rejected.raw_session_id as session_id,
        rows_rejected.raw_user_id as user_id,
        rows_rejected.raw_customer_id as customer_id,
        rows_rejected.raw_event_type_text as event_type,
        rows_rejected.raw_timestamp as event_timestamp,
        rows_rejected.raw_channel as channel,
        rows_rejected.raw_properties as properties,
        coalesce(
            rows_rejected.raw_record,
            {{ raw_row_as_json('rows_rejected') }}
        ) as raw_record
    from rows_rejected
)

select * from final
