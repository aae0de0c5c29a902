-- The verdicts alone: what reads only why rows were refused (the published
-- snapshot, the run summary, the GX raw suite) reads them here, without
-- joining every rejected row of the history to its text in raw.events.
with

rows_rejected as (
    select
        load_id,
        loaded_at,
        source_file,
        row_number,
        rejection_reason as reason,
        rejection_detail as reason_detail
    from {{ ref('base_events_parsed') }}
    where rejection_reason is not null
)

select * from rows_rejected
