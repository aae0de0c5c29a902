{#- Counts straight from the raw tables, independently of the parsing in
    base_events_parsed, so audit.reconciliation can prove no row was lost. -#}

with

raw_rows as (
    select
        events.load_id,
        count(*) as raw_rows
    from {{ source('raw', 'events') }} as events
    group by events.load_id
),

loaded_files as (
    select
        loaded_files.load_id,
        min(loaded_files.loaded_at) as loaded_at,
        count(*) as files_loaded
    from {{ source('raw', 'loaded_files') }} as loaded_files
    group by loaded_files.load_id
),

final as (
    select
        raw_rows.load_id,
        loaded_files.loaded_at,
        coalesce(loaded_files.files_loaded, 0) as files_loaded,
        raw_rows.raw_rows
    from raw_rows
    left join loaded_files on raw_rows.load_id = loaded_files.load_id
)

select * from final
