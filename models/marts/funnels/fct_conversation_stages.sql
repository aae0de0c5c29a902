{#- Publishes int_conversation_stages_combined under the enforced contract. -#}
with

conversation_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        stage_order,
        reached_at,
        source
    from {{ ref('int_conversation_stages_combined') }}
)

select * from conversation_stages
