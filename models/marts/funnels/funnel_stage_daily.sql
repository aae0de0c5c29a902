with

conversation_funnel_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        stage_order,
        is_reached,
        is_reached_in_order
    from {{ ref('int_conversation_stages_sequenced') }}
),

conversation_funnels as (
    select
        conversation_id,
        funnel_name,
        has_reached_first_stage
    from {{ ref('int_conversation_funnels_progressed') }}
),

conversations as (
    select
        conversation_id,
        conversation_date,
        channel
    from {{ ref('fct_conversations') }}
),

stages_with_conversation_attributes as (
    select
        conversation_funnel_stages.funnel_name,
        conversations.conversation_date,
        coalesce(conversations.channel, 'unknown') as channel,
        conversation_funnel_stages.stage,
        conversation_funnel_stages.stage_order,
        conversation_funnels.has_reached_first_stage,
        conversation_funnel_stages.is_reached,
        conversation_funnel_stages.is_reached_in_order
    from conversation_funnel_stages
    inner join conversation_funnels
        on
            conversation_funnel_stages.conversation_id = conversation_funnels.conversation_id
            and conversation_funnel_stages.funnel_name = conversation_funnels.funnel_name
    inner join conversations
        on conversation_funnel_stages.conversation_id = conversations.conversation_id
),

stages_counted as (
    select
        cast(stages_with_conversation_attributes.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stages_with_conversation_attributes.conversation_date as date) as conversation_date,
        cast(stages_with_conversation_attributes.channel as {{ dbt.type_string() }}) as channel,
        cast(stages_with_conversation_attributes.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stages_with_conversation_attributes.stage_order as {{ dbt.type_int() }}) as stage_order,
        cast(sum(
            case when stages_with_conversation_attributes.has_reached_first_stage then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as conversations,
        cast(sum(
            case when stages_with_conversation_attributes.is_reached then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as reached,
        cast(sum(
            case when stages_with_conversation_attributes.is_reached_in_order then 1 else 0 end
        ) as {{ dbt.type_bigint() }}) as reached_in_order
    from stages_with_conversation_attributes
    group by
        stages_with_conversation_attributes.funnel_name,
        stages_with_conversation_attributes.conversation_date,
        stages_with_conversation_attributes.channel,
        stages_with_conversation_attributes.stage,
        stages_with_conversation_attributes.stage_order
)

select * from stages_counted
