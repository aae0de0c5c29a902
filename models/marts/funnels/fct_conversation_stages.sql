{#- Publishes the stages reached (int_conversation_stages_combined, through
    int_conversation_stages_sequenced, which adds the in-order reading)
    under the enforced contract: a view, so the rows are stored once, in the
    intermediate model. -#}
{{ config(
    materialized='view',
    unique_key=['conversation_id', 'funnel_name', 'stage'],
) }}

with

conversation_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        stage_order,
        reached_at,
        source,
        is_reached_in_order
    from {{ ref('int_conversation_stages_sequenced') }}
    where is_reached
)

select * from conversation_stages
