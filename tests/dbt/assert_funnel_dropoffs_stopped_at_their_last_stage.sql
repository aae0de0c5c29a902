{{ config(meta={'dagster': {'ref': {'name': 'funnel_dropoffs'}}}) }}

-- A drop-off reached its last_stage and no stage at or after next_stage.
-- Checked on the conversations the newest build of either model rewrote
-- (written_rows()); every conversation after a full build.
with

dropoffs as (
    select
        conversation_id,
        funnel_name,
        last_stage,
        next_stage_order
    from {{ ref('funnel_dropoffs') }}
    where
        {{ written_rows('funnel_dropoffs', 'conversation_id') }}
        or {{ written_rows('fct_conversation_stages', 'conversation_id') }}
),

conversation_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        stage_order
    from {{ ref('fct_conversation_stages') }}
    where
        {{ written_rows('funnel_dropoffs', 'conversation_id') }}
        or {{ written_rows('fct_conversation_stages', 'conversation_id') }}
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
