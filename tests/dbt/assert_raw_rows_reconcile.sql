-- raw rows = staged rows + duplicates dropped + quarantined rows, in total and
-- for every load run. Returns the offending rows; any row fails the build.

with

raw_total as (
    select count(*) as raw_rows from {{ source('raw', 'events') }}
),

parts_total as (
    select
        (select count(*) from {{ ref('stg_events') }}) as staged_rows,
        (select count(*) from {{ ref('rejected_events') }}) as quarantined_rows,
        (
            select count(*) - count(distinct event_id)
            from {{ ref('base_events_parsed') }}
            where rejection_reason is null
        ) as duplicates_dropped
),

totals_compared as (
    select
        'all loads' as scope,
        raw_total.raw_rows,
        parts_total.staged_rows + parts_total.duplicates_dropped + parts_total.quarantined_rows
            as accounted_rows
    from raw_total
    cross join parts_total
),

loads_compared as (
    select
        'load ' || cast(load_id as {{ dbt.type_string() }}) as scope,
        raw_rows,
        staged_rows + duplicates_dropped + quarantined_rows as accounted_rows
    from {{ ref('reconciliation') }}
),

mismatches as (
    select * from totals_compared
    where raw_rows <> accounted_rows
    union all
    select * from loads_compared
    where raw_rows <> accounted_rows
)

select * from mismatches
