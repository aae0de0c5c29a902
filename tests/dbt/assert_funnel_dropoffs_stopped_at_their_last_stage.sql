{{ config(meta={'dagster': {'ref': {'name': 'funnel_dropoffs'}}}) }}

-- A drop-off reached its last_stage and no stage at or after next_stage.
-- Checked on the conversations this run recomputed (scope_conversations).
with

conversations_in_scope as (
    select conversation_id from {{ ref('scope_conversations') }}
),

dropoffs as (
    select
        conversation_id,
        funnel_name,
        last_stage,
        next_stage_order
    from {{ ref('funnel_dropoffs') }}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
),

conversation_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        stage_order
    from {{ ref('fct_conversation_stages') }}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
),

last_stage_missing as (
    select
        dropoffs.conversation_id,
        dropoffs.funnel_name,
        dropoffs.last_stage,
        dropoffs.next_stage_order
    from dropoffs
    left join conversation_stages
        on
            dropoffs.conversation_id = conversation_stages.conversation_id
            and dropoffs.funnel_name = conversation_stages.funnel_name
            and dropoffs.last_stage = conversation_stages.stage
    where conversation_stages.conversation_id is null
),

later_stage_reached as (
    select
        dropoffs.conversation_id,
        dropoffs.funnel_name,
        dropoffs.last_stage,
        dropoffs.next_stage_order
    from dropoffs
    inner join conversation_stages
        on
            dropoffs.conversation_id = conversation_stages.conversation_id
            and dropoffs.funnel_name = conversation_stages.funnel_name
            and dropoffs.next_stage_order <= conversation_stages.stage_order
),

problems as (
    select * from last_stage_missing
    union all
    select * from later_stage_reached
)

select * from problems
