-- Sankey-ready: every step-to-next-step move, the last step of each path
-- leading to its outcome node. The moves come with the steps
-- (int_conversation_steps_cleaned.next_step, kept up to date conversation by
-- conversation), so this is one join and one count over them.
with

paths as (
    select
        conversation_id,
        is_successful,
        outcome_step
    from {{ ref('fct_conversation_paths') }}
),

steps as (
    select
        conversation_id,
        step_number,
        step,
        next_step
    from {{ ref('int_conversation_steps_cleaned') }}
),

moves as (
    select
        steps.step_number as depth,  -- noqa: RF04
        steps.step as from_step,
        coalesce(steps.next_step, paths.outcome_step) as to_step,
        paths.is_successful
    from steps
    inner join paths
        on steps.conversation_id = paths.conversation_id
),

transitions_counted as (
    select
        moves.depth,
        moves.from_step,
        moves.to_step,
        count(*) as conversations,
        sum(case when moves.is_successful then 1 else 0 end) as successful_conversations
    from moves
    group by
        moves.depth,
        moves.from_step,
        moves.to_step
),

final as (
    select
        cast(transitions_counted.depth as {{ dbt.type_int() }}) as depth,  -- noqa: RF04
        cast(transitions_counted.from_step as {{ dbt.type_string() }}) as from_step,
        cast(transitions_counted.to_step as {{ dbt.type_string() }}) as to_step,
        cast(transitions_counted.conversations as {{ dbt.type_bigint() }}) as conversations,
        cast(transitions_counted.successful_conversations as {{ dbt.type_bigint() }})
            as successful_conversations,
        cast(
            cast(transitions_counted.successful_conversations as {{ type_double() }})
            / transitions_counted.conversations
            as {{ type_double() }}
        ) as success_share
    from transitions_counted
)

select * from final
