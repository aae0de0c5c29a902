{#- One row per conversation_date x divergence population (comparison x
    segment, int_divergence_memberships_listed): its successful and failed
    conversations of that day; path_divergence_counted adds up the days. A
    run rewrites every day holding a conversation it touched. -#}
with

memberships as (
    select
        comparison,
        segment_type,
        segment_value,
        conversation_date,
        is_successful
    from {{ ref('int_divergence_memberships_listed') }}
    where {{ touched('conversation_date', 'day') }}
),

population_days_counted as (
    select
        memberships.conversation_date,
        memberships.comparison,
        memberships.segment_type,
        memberships.segment_value,
        count(case when memberships.is_successful then 1 end) as successful_conversations,
        count(case when not memberships.is_successful then 1 end) as failed_conversations
    from memberships
    group by
        memberships.conversation_date,
        memberships.comparison,
        memberships.segment_type,
        memberships.segment_value
)

select * from population_days_counted
