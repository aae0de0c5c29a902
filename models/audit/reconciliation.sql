{#- Each count is read on its own (raw rows from raw.events, the others from
    the views over base_events_parsed), so a row lost between raw and
    staging, or classified twice, breaks the identity checked by
    tests/dbt/assert_raw_rows_reconcile.sql. A load run's counts never change
    once it is parsed: a run counts the load runs since the previous build. -#}
{{ config(
    partition_by=('load_id' if target.type == 'spark' else none),
    unique_key='load_id',
    scope_key='load_id',
    scope_model='scope_load_runs',
) }}

{#- an incremental build's load runs, as literals (integers_listed) -#}
{%- set load_runs_in_scope = ref('scope_load_runs') %}
{%- set load_ids_in_scope = integers_listed(load_runs_in_scope, 'load_id') if is_incremental() else none %}

with

loads as (
    select * from {{ ref('stg_loads') }}
    {%- if is_incremental() %}
    where load_id in {{ load_ids_in_scope }}
    {%- endif %}
),

staged_rows as (
    select
        load_id,
        count(*) as staged_rows,
        cast(sum(case when not is_known_type then 1 else 0 end) as {{ dbt.type_bigint() }}) as unknown_type_rows
    from {{ ref('stg_events') }}
    {%- if is_incremental() %}
    where load_id in {{ load_ids_in_scope }}
    {%- endif %}
    group by load_id
),

valid_rows as (
    select
        load_id,
        count(*) as valid_rows
    from {{ ref('base_events_parsed') }}
    where
        rejection_reason is null
    {%- if is_incremental() %}
        and load_id in {{ load_ids_in_scope }}
    {%- endif %}
    group by load_id
),

quarantined_rows as (
    select
        load_id,
        count(*) as quarantined_rows
    from {{ ref('rejected_events') }}
    {%- if is_incremental() %}
    where load_id in {{ load_ids_in_scope }}
    {%- endif %}
    group by load_id
),

loads_reconciled as (
    select
        loads.load_id,
        loads.loaded_at,
        loads.files_loaded,
        loads.raw_rows,
        coalesce(staged_rows.staged_rows, 0) as staged_rows,
        coalesce(valid_rows.valid_rows, 0) - coalesce(staged_rows.staged_rows, 0)
            as duplicates_dropped,
        coalesce(quarantined_rows.quarantined_rows, 0) as quarantined_rows,
        coalesce(staged_rows.unknown_type_rows, 0) as unknown_type_rows
    from loads
    left join staged_rows on loads.load_id = staged_rows.load_id
    left join valid_rows on loads.load_id = valid_rows.load_id
    left join quarantined_rows on loads.load_id = quarantined_rows.load_id
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
