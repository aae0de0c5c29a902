{{ config(
    unique_key=['funnel_name', 'conversation_date', 'segment_type', 'segment_value', 'stage'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- funnel_stage_daily broken down by segment: channel, agent_id and each
-- experiment's variant (segment_type 'experiment:<test_name>'; conversations
-- that saw more than one variant of a test are left out of that test).
-- Incremental, replaced a whole conversation_date at a time: a run
-- recomputes every day holding a conversation whose stages, funnel progress,
-- facts or exposures may have changed (is_day_to_refresh), and a changed
-- funnel or experiments seed, marker rules or conversion window rebuild
-- every day.

{%- set scope_days = ref('scope_days') %}

with

conversations as (
    select
        conversation_id,
        conversation_date,
        channel,
        agent_id
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

conversation_funnels as (
    select
        conversation_id,
        {{ conversation_date_on_spark() }}
        funnel_name,
        has_reached_first_stage
    from {{ ref('int_conversation_funnels_progressed') }}
    where conversation_id in (select conversations.conversation_id from conversations)
),

funnel_stages as (
    select
        funnel_name,
        stage,
        stage_order
    from {{ ref('int_funnel_stages_ordered') }}
),

-- the stages reached; a stage of an entered funnel without a row is not
conversation_stages as (
    select
        conversation_id,
        {{ conversation_date_on_spark() }}
        funnel_name,
        stage,
        is_reached_in_order
    from {{ ref('fct_conversation_stages') }}
    where conversation_id in (select conversations.conversation_id from conversations)
),

-- one variant per conversation and test; contaminated conversations (more
-- than one variant seen) are left out of that test's segments
uncontaminated_exposures as (
    select
        conversation_id,
        test_name,
        variant
    from {{ ref('int_ab_test_exposures_checked') }}
    where
        variant_count = 1
        and conversation_id in (select conversations.conversation_id from conversations)
),

conversation_segments as (
    select
        conversations.conversation_id,
        'channel' as segment_type,
        coalesce(conversations.channel, 'unknown') as segment_value
    from conversations

    union all

    select
        conversations.conversation_id,
        'agent_id' as segment_type,
        coalesce(conversations.agent_id, 'unknown') as segment_value
    from conversations

    union all

    select
        uncontaminated_exposures.conversation_id,
        {{ dbt.concat(["'experiment:'", 'uncontaminated_exposures.test_name']) }} as segment_type,
        uncontaminated_exposures.variant as segment_value
    from uncontaminated_exposures
),

-- every stage of each funnel a conversation entered, reached or not
stages_segmented as (
    select
        conversation_funnels.funnel_name,
        conversations.conversation_date,
        conversation_segments.segment_type,
        conversation_segments.segment_value,
        funnel_stages.stage,
        funnel_stages.stage_order,
        conversation_funnels.has_reached_first_stage,
        conversation_stages.conversation_id is not null as is_reached,
        coalesce(conversation_stages.is_reached_in_order, false) as is_reached_in_order
    from conversation_funnels
    inner join conversations
        on {{ same_conversation('conversations', 'conversation_funnels', 'conversations.conversation_date') }}
    inner join funnel_stages
        on conversation_funnels.funnel_name = funnel_stages.funnel_name
    left join conversation_stages
        on
            {{ same_conversation('conversation_funnels', 'conversation_stages', 'conversations.conversation_date') }}
            and funnel_stages.funnel_name = conversation_stages.funnel_name
            and funnel_stages.stage = conversation_stages.stage
    inner join conversation_segments
        on conversation_funnels.conversation_id = conversation_segments.conversation_id
),

stages_counted as (
    select
        cast(stages_segmented.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stages_segmented.conversation_date as {{ type_date() }}) as conversation_date,
        cast(stages_segmented.segment_type as {{ dbt.type_string() }}) as segment_type,
        cast(stages_segmented.segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(stages_segmented.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stages_segmented.stage_order as {{ dbt.type_int() }}) as stage_order,
        cast(sum(
            case when stages_segmented.has_reached_first_stage then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as conversations,
        cast(sum(
            case when stages_segmented.is_reached then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as reached,
        cast(sum(
            case when stages_segmented.is_reached_in_order then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as reached_in_order
    from stages_segmented
    group by
        stages_segmented.funnel_name,
        stages_segmented.conversation_date,
        stages_segmented.segment_type,
        stages_segmented.segment_value,
        stages_segmented.stage,
        stages_segmented.stage_order
)

select * from stages_counted
