{#- Publishes int_sales_conversations_scored under the enforced contract;
    every rule lives there. Replaced conversation by conversation, as it. -#}
{{ config(
    unique_key='conversation_id',
) }}

with

conversations_in_scope as (
    select conversation_id from {{ ref('scope_conversations') }}
),

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
    {%- if is_incremental() %}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
)

select * from sales_conversations
