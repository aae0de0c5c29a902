{{ config(meta={'dagster': {'ref': {'name': 'reconciliation'}}}) }}

-- raw rows = staged rows + duplicates dropped + quarantined rows, for every
-- load run this run parsed (scope_load_runs), each count read on its own from the table holding
-- the rows, and audit.reconciliation's row of the load run says the same.
-- A load run's rows never change once it is parsed, so checking each when
-- it is written covers the history without reading it again
-- (docs/incremental.md#what-a-build-checks); that a duplicate's event is
-- staged once across load runs is stg_events' unique test on the new
-- event ids. Returns the offending load runs; any row fails the build.

with

load_runs_in_scope as (
    select load_id from {{ ref('scope_load_runs') }}
),

raw_rows as (
    select
        events.load_id,
        count(*) as raw_rows
    from {{ source('raw', 'events') }} as events
    where events.load_id in (select load_runs_in_scope.load_id from load_runs_in_scope)
    group by events.load_id
),

staged_rows as (
    select
        stg_events.load_id,
        count(*) as staged_rows
    from {{ ref('stg_events') }} as stg_events
    where stg_events.load_id in (select load_runs_in_scope.load_id from load_runs_in_scope)
    group by stg_events.load_id
),

valid_rows as (
    select
        parsed.load_id,
        count(*) as valid_rows
    from {{ ref('base_events_parsed') }} as parsed
    where
        parsed.rejection_reason is null
        and parsed.load_id in (select load_runs_in_scope.load_id from load_runs_in_scope)
    group by parsed.load_id
),

quarantined_rows as (
    select
        rejected_events.load_id,
        count(*) as quarantined_rows
    from {{ ref('rejected_events') }} as rejected_events
    where rejected_events.load_id in (select load_runs_in_scope.load_id from load_runs_in_scope)
    group by rejected_events.load_id
),

loads_counted as (
    select
        raw_rows.load_id,
        raw_rows.raw_rows,
        coalesce(staged_rows.staged_rows, 0) as staged_rows,
        coalesce(valid_rows.valid_rows, 0) - coalesce(staged_rows.staged_rows, 0) as duplicates_dropped,
        coalesce(quarantined_rows.quarantined_rows, 0) as quarantined_rows
    from raw_rows
    left join staged_rows on raw_rows.load_id = staged_rows.load_id
    left join valid_rows on raw_rows.load_id = valid_rows.load_id
    left join quarantined_rows on raw_rows.load_id = quarantined_rows.load_id
),

loads_compared as (
    select
        loads_counted.load_id,
        loads_counted.raw_rows,
        loads_counted.staged_rows + loads_counted.duplicates_dropped + loads_counted.quarantined_rows
            as accounted_rows,
        reconciliation.load_id is not null
        and reconciliation.raw_rows = loads_counted.raw_rows
        and reconciliation.staged_rows = loads_counted.staged_rows
        and reconciliation.duplicates_dropped = loads_counted.duplicates_dropped
        and reconciliation.quarantined_rows = loads_counted.quarantined_rows
            as agrees_with_reconciliation
    from loads_counted
    left join {{ ref('reconciliation') }} as reconciliation
        on loads_counted.load_id = reconciliation.load_id
),

mismatches as (
    select *
    from loads_compared
    where
        raw_rows <> accounted_rows
        or not agrees_with_reconciliation
)

select * from mismatches
