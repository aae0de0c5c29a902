{#- One row per conversation_date x depth x from_step x to_step: the
    moves of that day's conversations (fct_conversation_paths)
    from the step at `depth` to the next one, the last step moving into its
    outcome node; path_transitions adds up the days. A conversation counts
    in the day of its conversation_date; a run rewrites every day holding a
    conversation in scope (new events, or a new outcome when the clock
    carried it across the abandonment window), so its old moves are
    replaced by its new ones. -#}
{{ config(
    unique_key=['conversation_date', 'depth', 'from_step', 'to_step'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

paths as (
    select
        conversation_id,
        conversation_date,
        is_successful,
        outcome_step
    from {{ ref('fct_conversation_paths') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

steps as (
    select
        conversation_id,
        {{ conversation_date_on_spark() }}
        step_number,
        step,
        next_step
    from {{ ref('int_conversation_steps_cleaned') }}
),

moves as (
    select
        paths.conversation_date,
        steps.step_number as depth,  -- noqa: RF04
        steps.step as from_step,
        coalesce(steps.next_step, paths.outcome_step) as to_step,
        paths.is_successful
    from steps
    inner join paths
        on {{ same_conversation('paths', 'steps', 'paths.conversation_date') }}
),

transition_days_counted as (
    select
        moves.conversation_date,
        moves.depth,
        moves.from_step,
        moves.to_step,
        count(*) as conversations,
        count(case when moves.is_successful then 1 end) as successful_conversations
    from moves
    group by
        moves.conversation_date,
        moves.depth,
        moves.from_step,
        moves.to_step
)

select * from transition_days_counted
