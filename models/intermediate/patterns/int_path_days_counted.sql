{#- One row per conversation_date x is_successful x path: how many
    finished conversations of that day (in_progress ones are in neither
    group) took the path; top_paths adds up the days and ranks. A
    conversation counts in the day of its conversation_date; a run rewrites
    every day holding a conversation in scope (new steps, or a new outcome
    when the clock carried it across the abandonment window). -#}
{{ config(
    unique_key=['conversation_date', 'is_successful', 'path'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

paths as (
    select
        conversation_date,
        is_successful,
        path,
        path_length
    from {{ ref('fct_conversation_paths') }}
    where
        outcome != 'in_progress'
    {%- if is_incremental() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
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
