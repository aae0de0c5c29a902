{{ config(meta={'dagster': {'ref': {'name': 'metrics_by_dimension'}}}) }}

{#- metrics_by_dimension adds up to fct_conversations, day by day, over the
    patterns population (fct_conversation_paths): the environment rows count
    every conversation once (and its started/completed ones); tool calls,
    fallbacks, user messages (intent) and agent messages (model) add up to
    fct_conversations' tool_calls, fallback_count, user_turns and
    agent_messages. Each failing row names the day, the check, and both sides.
    Checked on the days this run recomputed (scope_days). -#}

with

days_in_scope as (
    select event_date from {{ ref('scope_days') }}
),

population as (
    select
        fct_conversations.conversation_date,
        fct_conversations.started,
        fct_conversations.was_completed,
        fct_conversations.tool_calls,
        fct_conversations.fallback_count,
        fct_conversations.user_turns,
        fct_conversations.agent_messages
    from {{ ref('fct_conversations') }} as fct_conversations
    inner join {{ ref('fct_conversation_paths') }} as fct_conversation_paths
        on fct_conversations.conversation_id = fct_conversation_paths.conversation_id
    where
        fct_conversations.conversation_date in (select days_in_scope.event_date from days_in_scope)
        -- the same day (a conversation's first event's): the hashed side holds those days only
        and fct_conversation_paths.conversation_date in (select days_in_scope.event_date from days_in_scope)
),

expected as (
    select
        population.conversation_date as metric_date,
        count(*) as conversations,
        sum(case when population.started and population.was_completed then 1 else 0 end) as completed,
        sum(population.tool_calls) as tool_calls,
        sum(population.fallback_count) as fallbacks,
        sum(population.user_turns) as user_messages,
        sum(population.agent_messages) as agent_messages
    from population
    group by population.conversation_date
),

breakdowns as (
    select
        metrics_by_dimension.metric_date,
        sum(case when metrics_by_dimension.dimension = 'environment' then metrics_by_dimension.conversations end)
            as conversations,
        sum(
            case
                when metrics_by_dimension.dimension = 'environment'
                    then metrics_by_dimension.completed_conversations
            end
        ) as completed,
        coalesce(sum(case when metrics_by_dimension.dimension = 'tool' then metrics_by_dimension.events end), 0)
            as tool_calls,
        coalesce(
            sum(case when metrics_by_dimension.dimension = 'fallback_topic' then metrics_by_dimension.events end), 0
        ) as fallbacks,
        coalesce(sum(case when metrics_by_dimension.dimension = 'intent' then metrics_by_dimension.events end), 0)
            as user_messages,
        coalesce(sum(case when metrics_by_dimension.dimension = 'model' then metrics_by_dimension.events end), 0)
            as agent_messages
    from {{ ref('metrics_by_dimension') }} as metrics_by_dimension
    where metrics_by_dimension.metric_date in (select days_in_scope.event_date from days_in_scope)
    group by metrics_by_dimension.metric_date
),

compared as (
    select
        expected.metric_date,
        expected.conversations as expected_conversations,
        breakdowns.conversations as breakdown_conversations,
        expected.completed as expected_completed,
        breakdowns.completed as breakdown_completed,
        expected.tool_calls as expected_tool_calls,
        breakdowns.tool_calls as breakdown_tool_calls,
        expected.fallbacks as expected_fallbacks,
        breakdowns.fallbacks as breakdown_fallbacks,
        expected.user_messages as expected_user_messages,
        breakdowns.user_messages as breakdown_user_messages,
        expected.agent_messages as expected_agent_messages,
        breakdowns.agent_messages as breakdown_agent_messages
    from expected
    left join breakdowns
        on expected.metric_date = breakdowns.metric_date
)

select *
from compared
where
    breakdown_conversations is null
    or expected_conversations != breakdown_conversations
    or expected_completed != breakdown_completed
    or expected_tool_calls != breakdown_tool_calls
    or expected_fallbacks != breakdown_fallbacks
    or expected_user_messages != breakdown_user_messages
    or expected_agent_messages != breakdown_agent_messages
