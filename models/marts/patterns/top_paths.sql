-- Most common paths, ranked separately among successful and failed
-- conversations (failed: every finished conversation that did not succeed;
-- in_progress conversations are left out): the sum over days of the day
-- partials (int_path_days_counted), which a run rewrites for the days in scope
-- (scope_days).
{{ config(materialized='view') }}
with

path_days as (
    select
        is_successful,
        path,
        path_length,
        conversations
    from {{ ref('int_path_days_counted') }}
),

paths_counted as (
    select
        path_days.path,
        path_days.is_successful,
        min(path_days.path_length) as path_length,
        sum(path_days.conversations) as conversations
    from path_days
    group by
        path_days.path,
        path_days.is_successful
),

paths_ranked as (
    select
        paths_counted.*,
        cast(paths_counted.conversations as {{ type_double() }})
        / sum(paths_counted.conversations) over (partition by paths_counted.is_successful) as share_of_group,
        row_number() over (
            partition by paths_counted.is_successful
            order by paths_counted.conversations desc, paths_counted.path asc
        ) as path_rank
    from paths_counted
),

final as (
    select
        cast(case when paths_ranked.is_successful then 'successful' else 'failed' end as {{ dbt.type_string() }})
            as success_group,
        cast(paths_ranked.path_rank as {{ dbt.type_int() }}) as path_rank,
        cast(paths_ranked.path as {{ dbt.type_string() }}) as path,  -- noqa: RF04
        cast(paths_ranked.path_length as {{ dbt.type_int() }}) as path_length,
        cast(paths_ranked.conversations as {{ dbt.type_bigint() }}) as conversations,
        cast(paths_ranked.share_of_group as {{ type_double() }}) as share_of_group
    from paths_ranked
)

select * from final
