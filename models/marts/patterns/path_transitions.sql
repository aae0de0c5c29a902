-- Sankey-ready: every step-to-next-step move, the last step of each path
-- leading to its outcome node; the sum over days of the day partials
-- (int_path_transition_days_counted), which a run rewrites for the days in scope
-- (scope_days).
{{ config(materialized='view') }}
with

transition_days as (
    select
        depth,
        from_step,
        to_step,
        conversations,
        successful_conversations
    from {{ ref('int_path_transition_days_counted') }}
),

transitions_counted as (
    select
        transition_days.depth,
        transition_days.from_step,
        transition_days.to_step,
        sum(transition_days.conversations) as conversations,
        sum(transition_days.successful_conversations) as successful_conversations
    from transition_days
    group by
        transition_days.depth,
        transition_days.from_step,
        transition_days.to_step
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
