{{ config(meta={'dagster': {'ref': {'name': 'fct_conversation_rephrases'}}}) }}

{#- The per-message flags of int_user_messages_compared re-implement the
    contract's word-overlap rule; their count per conversation
    (fct_conversation_rephrases.rephrase_count) equals
    fct_conversations.rephrase_count, and every engaged conversation has a
    row. Checked on the conversations this run recomputed
    (scope_conversations). -#}

with

contract_counts as (
    select
        fct_conversations.conversation_id,
        fct_conversations.rephrase_count
    from {{ ref('fct_conversations') }} as fct_conversations
    where
        fct_conversations.user_turns > 0
        and fct_conversations.conversation_id in (
            select scope_conversations.conversation_id from {{ ref('scope_conversations') }} as scope_conversations
        )
),

flag_counts as (
    select
        fct_conversation_rephrases.conversation_id,
        fct_conversation_rephrases.rephrase_count
    from {{ ref('fct_conversation_rephrases') }} as fct_conversation_rephrases
    where fct_conversation_rephrases.conversation_id in (
        select scope_conversations.conversation_id from {{ ref('scope_conversations') }} as scope_conversations
    )
),

violations as (
    select
        contract_counts.conversation_id,
        contract_counts.rephrase_count as contract_rephrase_count,
        flag_counts.rephrase_count as flagged_rephrase_count
    from contract_counts
    full outer join flag_counts
        on contract_counts.conversation_id = flag_counts.conversation_id
    where
        contract_counts.conversation_id is null
        or flag_counts.conversation_id is null
        or contract_counts.rephrase_count != flag_counts.rephrase_count
)

select * from violations
