{#- One row per conversation with at least one user message (known event
    types): its rephrases counted both ways and whether the user was
    frustrated.
      rephrase_count           the contract's word-overlap rule (equal to
                               fct_conversations.rephrase_count)
      semantic_rephrase_count  the sentence-embedding rule
                               (int_user_messages_compared); null unless every
                               user message of the conversation is embedded
                               (no model configured, or not embedded yet: the
                               hourly job leaves the classifier to the daily one)
      is_frustrated            at least var('frustration_min_rephrases')
                               rephrases, then abandoned or handed off; the
                               rephrases counted by embeddings where the
                               conversation has them, else by word overlap
                               (frustration_rephrase_method says which)
    Replaced conversation by conversation (new events, new embeddings,
    inferred abandonment crossing the clock: scope_conversations). -#}
{{ config(
    unique_key='conversation_id',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

conversations as (
    select
        fct_conversations.conversation_id,
        fct_conversations.conversation_date,
        fct_conversations.was_abandoned,
        fct_conversations.had_handoff
    from {{ ref('fct_conversations') }} as fct_conversations
    {%- if is_incremental() %}
    where
        fct_conversations.conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        -- they all lie on the scope's days: Spark reads only those partitions
        and {{ on_scope_days('fct_conversations.conversation_date', scope_days) }}
    {%- endif %}
),

user_messages as (
    select
        int_user_messages_compared.conversation_id,
        int_user_messages_compared.is_rephrase,
        int_user_messages_compared.is_semantic_rephrase,
        int_user_messages_compared.embedding_model
    from {{ ref('int_user_messages_compared') }} as int_user_messages_compared
    {%- if is_incremental() %}
    where int_user_messages_compared.conversation_id in (
        select conversations_in_scope.conversation_id from conversations_in_scope
    )
    {%- endif %}
),

rephrases_counted as (
    select
        user_messages.conversation_id,
        count(*) as user_messages,
        count(user_messages.embedding_model) as embedded_user_messages,
        count(case when user_messages.is_rephrase then 1 end) as rephrase_count,
        count(user_messages.is_semantic_rephrase) as semantically_compared_messages,
        count(case when user_messages.is_semantic_rephrase then 1 end) as semantic_rephrases,
        min(user_messages.embedding_model) as embedding_model
    from user_messages
    group by user_messages.conversation_id
),

-- embeddings count only where every user message has one and each was
-- compared with the one before it (one model throughout)
rephrases_chosen as (
    select
        rephrases_counted.*,
        case
            when rephrases_counted.semantically_compared_messages = rephrases_counted.user_messages
                then rephrases_counted.semantic_rephrases
        end as semantic_rephrase_count
    from rephrases_counted
),

conversations_judged as (
    select
        cast(rephrases_chosen.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(conversations.conversation_date as {{ type_date() }}) as conversation_date,
        cast(rephrases_chosen.user_messages as {{ dbt.type_bigint() }}) as user_messages,
        cast(rephrases_chosen.rephrase_count as {{ dbt.type_bigint() }}) as rephrase_count,
        cast(rephrases_chosen.embedded_user_messages as {{ dbt.type_bigint() }}) as embedded_user_messages,
        cast(
            case when rephrases_chosen.semantic_rephrase_count is not null then rephrases_chosen.embedding_model end
            as {{ dbt.type_string() }}
        ) as embedding_model,
        cast(rephrases_chosen.semantic_rephrase_count as {{ dbt.type_bigint() }}) as semantic_rephrase_count,
        cast(
            case when rephrases_chosen.semantic_rephrase_count is not null then 'embedding' else 'word_overlap' end
            as {{ dbt.type_string() }}
        ) as frustration_rephrase_method,
        cast(
            coalesce(rephrases_chosen.semantic_rephrase_count, rephrases_chosen.rephrase_count)
            as {{ dbt.type_bigint() }}
        ) as frustration_rephrase_count,
        coalesce(conversations.was_abandoned, false) as was_abandoned,
        coalesce(conversations.had_handoff, false) as had_handoff,
        coalesce(
            coalesce(rephrases_chosen.semantic_rephrase_count, rephrases_chosen.rephrase_count)
            >= {{ var('frustration_min_rephrases') }}
            and (conversations.was_abandoned or conversations.had_handoff),
            false
        ) as is_frustrated
    from rephrases_chosen
    inner join conversations
        on rephrases_chosen.conversation_id = conversations.conversation_id
)

select * from conversations_judged
