{#- One row per conversation_date x divergence population (comparison x
    segment, int_divergence_memberships_listed): its successful and failed
    conversations of that day; path_divergence_counted adds up the days. A
    run rewrites every day holding a conversation in scope. -#}
{{ config(
    unique_key=['conversation_date', 'comparison', 'segment_type', 'segment_value'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{#- the days this run rewrites, as literals: the view read below computes only those days -#}
{%- set scope_days = ref('scope_days') %}

with

memberships as (
    select
        comparison,
        segment_type,
        segment_value,
        conversation_date,
        is_successful
    from {{ ref('int_divergence_memberships_listed') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
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
