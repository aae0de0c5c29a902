{#- Publishes int_sales_conversations_scored under the enforced contract;
    every rule lives there. Replaced conversation by conversation, as it. -#}
with

sales_conversations as (
    select
        conversation_id,
        conversation_date,
        outcome,
        converted,
        lead_score,
        user_turns,
        objections_raised,
        objection_list,
        qualification_score,
        reached_qualified,
        reached_booked,
        sales_outcome
    from {{ ref('int_sales_conversations_scored') }}
    where {{ touched('conversation_id') }}
)

select * from sales_conversations
