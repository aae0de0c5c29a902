{#- One row per load run this run parses: the load runs after the newest one
    the last complete run covered (audit.scope_runs), every load run in a
    warehouse no run has covered yet and in a --full-refresh. -#}

with

covered as (
    select max(scope_runs.through_load_id) as through_load_id
    from {{ source('ledger', 'scope_runs') }} as scope_runs
    -- a --full-refresh parses every load run again, as a first run does
    {%- if flags.FULL_REFRESH %}
    where false
    {%- endif %}
),

loads as (
    select
        load_id,
        loaded_at,
        files_loaded,
        raw_rows
    from {{ ref('stg_loads') }}
),

load_runs_after_covered as (
    select loads.*
    from loads
    cross join covered
    where loads.load_id > coalesce(covered.through_load_id, -1)
)

select * from load_runs_after_covered
