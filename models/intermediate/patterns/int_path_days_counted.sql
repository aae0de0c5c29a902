{#- One row per conversation_date x is_successful x path: how many
    finished conversations of that day (in_progress ones are in neither
    group) took the path; top_paths adds up the days and ranks. A
    conversation counts in the day of its conversation_date; a run rewrites
    every day holding a conversation it touched (new steps, or a new outcome
    when the clock carried it across the abandonment window). -#}
with

paths as (
    select
        conversation_date,
        is_successful,
        path,
        path_length
    from {{ ref('int_conversation_paths_assembled') }}
    where
        outcome != 'in_progress'
        and {{ touched('conversation_date', 'day') }}
),

path_days_counted as (
    select
        paths.conversation_date,
        paths.is_successful,
        paths.path,
        min(paths.path_length) as path_length,
        count(*) as conversations
    from paths
    group by
        paths.conversation_date,
        paths.is_successful,
        paths.path
)

select * from path_days_counted
