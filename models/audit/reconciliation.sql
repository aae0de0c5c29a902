{#- Each count comes from the table that holds the rows, independently, so a
    row lost between raw and staging breaks the identity checked by
    tests/dbt/assert_raw_rows_reconcile.sql. -#}

with

raw_rows as (
    select
        load_id,
        count(*) as raw_rows
    from {{ source('raw', 'events') }}
    group by load_id
),

loads as (
    select
        load_id,
        min(loaded_at) as loaded_at,
        count(*) as files_loaded
    from {{ source('raw', 'loaded_files') }}
    group by load_id
),

staged_rows as (
    select
        load_id,
        count(*) as staged_rows,
        sum(case when not is_known_type then 1 else 0 end) as unknown_type_rows
    from {{ ref('stg_events') }}
    group by load_id
),

valid_rows as (
    select
        load_id,
        count(*) as valid_rows
    from {{ ref('base_events_parsed') }}
    where rejection_reason is null
    group by load_id
),

quarantined_rows as (
    select
        load_id,
        count(*) as quarantined_rows
    from {{ ref('rejected_events') }}
    group by load_id
),

loads_reconciled as (
    select
        raw_rows.load_id,
        loads.loaded_at,
        coalesce(loads.files_loaded, 0) as files_loaded,
        raw_rows.raw_rows,
        coalesce(staged_rows.staged_rows, 0) as staged_rows,
        coalesce(valid_rows.valid_rows, 0) - coalesce(staged_rows.staged_rows, 0)
            as duplicates_dropped,
        coalesce(quarantined_rows.quarantined_rows, 0) as quarantined_rows,
        coalesce(staged_rows.unknown_type_rows, 0) as unknown_type_rows
    from raw_rows
    left join loads on raw_rows.load_id = loads.load_id
    left join staged_rows on raw_rows.load_id = staged_rows.load_id
    left join valid_rows on raw_rows.load_id = valid_rows.load_id
    left join quarantined_rows on raw_rows.load_id = quarantined_rows.load_id
),

final as (
    select
        loads_reconciled.*,
        loads_reconciled.raw_rows = loads_reconciled.staged_rows
        + loads_reconciled.duplicates_dropped
        + loads_reconciled.quarantined_rows as is_reconciled
    from loads_reconciled
)

select * from final
