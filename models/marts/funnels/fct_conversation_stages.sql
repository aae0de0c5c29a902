{#- Publishes int_conversation_stages_combined under the enforced contract.
    Incremental like it: a run replaces every row of the conversations with
    newly loaded events or new stage classifications. -#}

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
    where {{ touched('conversation_id') }}
)

select * from conversation_stages
