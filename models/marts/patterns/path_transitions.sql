-- Sankey-ready: every step-to-next-step move, the last step of each path
-- leading to its outcome node.
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
        step
    from {{ ref('int_conversation_steps_cleaned') }}
),

steps_in_scope as (
    select
        steps.conversation_id,
        steps.step_number,
        steps.step,
        paths.is_successful
    from steps
    inner join paths
        on steps.conversation_id = paths.conversation_id
),

-- the outcome node is each path's last step
outcome_nodes as (
    select
        paths.conversation_id,
        coalesce(max(steps.step_number), 0) + 1 as step_number,
        paths.outcome_step as step,
        paths.is_successful
    from paths
    left join steps
        on paths.conversation_id = steps.conversation_id
    group by
        paths.conversation_id,
        paths.outcome_step,
        paths.is_successful
),

path_nodes as (
    select * from steps_in_scope
    union all
    select * from outcome_nodes
),

moves as (
    select
        path_nodes.conversation_id,
        path_nodes.step_number as depth,  -- noqa: RF04
        path_nodes.step as from_step,
        lead(path_nodes.step) over (
            partition by path_nodes.conversation_id
            order by path_nodes.step_number
        ) as to_step,
        path_nodes.is_successful
    from path_nodes
),

transitions_counted as (
    select
        moves.depth,
        moves.from_step,
        moves.to_step,
        count(*) as conversations,
        sum(case when moves.is_successful then 1 else 0 end) as successful_conversations
    from moves
    where moves.to_step is not null
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
