{#- One row per user message (known event types), compared with the user
    message before it in its conversation (by timestamp, then event_id): the
    per-message flags behind both rephrase counts.
      is_rephrase           the contract's word-overlap rule (held here
                            only; fct_conversations.rephrase_count counts it): both
                            word sets non-empty and Jaccard similarity >=
                            var('rephrase_jaccard_threshold')
      is_semantic_rephrase  the sentence-embedding rule: both messages
                            embedded by the same model, cosine similarity
                            above var('semantic_rephrase_similarity'), both
                            with words and worded differently (a repeat of
                            the same words is not a rephrase); null while
                            either message has no embedding of one model
    A conversation's first user message compares with nothing: both flags
    false (is_semantic_rephrase null until it is embedded). Replaced
    conversation by conversation: new events, and new embeddings from the
    classifier (scope_conversations). -#}
{{ config(
    unique_key='event_id',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

user_messages as (
    select
        conversation_id,
        event_id,
        event_at,
        content
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        is_known_type
        and event_type = 'user_message'
        and conversation_id is not null
),

embeddings as (
    select
        event_id,
        embedding,
        embedding_model
    from {{ ref('stg_message_embeddings') }}
    {%- if is_incremental() %}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

messages_numbered as (
    select
        user_messages.conversation_id,
        user_messages.event_id,
        user_messages.event_at,
        {{ word_set('user_messages.content') }} as words,
        {{ word_list('user_messages.content') }} as wording,
        embeddings.embedding,
        embeddings.embedding_model,
        row_number() over (
            partition by user_messages.conversation_id
            order by user_messages.event_at, user_messages.event_id
        ) as user_message_number
    from user_messages
    left join embeddings
        on user_messages.event_id = embeddings.event_id
),

messages_paired as (
    select
        later.conversation_id,
        later.event_id,
        later.event_at,
        later.user_message_number,
        earlier.event_id as previous_event_id,
        later.embedding_model,
        earlier.event_id is not null
        and {{ list_length('earlier.words') }} > 0
        and {{ list_length('later.words') }} > 0 as both_have_words,
        {{ jaccard_similarity('earlier.words', 'later.words') }} as word_similarity,
        earlier.wording = later.wording as is_same_wording,
        case
            when earlier.embedding_model = later.embedding_model
                then {{ cosine_similarity('earlier.embedding', 'later.embedding') }}
        end as embedding_similarity
    from messages_numbered as later
    left join messages_numbered as earlier
        on
            later.conversation_id = earlier.conversation_id
            and later.user_message_number = earlier.user_message_number + 1
),

messages_compared as (
    select
        cast(messages_paired.event_id as {{ dbt.type_string() }}) as event_id,
        cast(messages_paired.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(messages_paired.event_at as {{ dbt.type_timestamp() }}) as message_at,
        cast(messages_paired.user_message_number as {{ dbt.type_bigint() }}) as user_message_number,
        cast(messages_paired.previous_event_id as {{ dbt.type_string() }}) as previous_event_id,
        cast(messages_paired.word_similarity as {{ type_double() }}) as word_similarity,
        coalesce(
            messages_paired.both_have_words
            and messages_paired.word_similarity >= {{ var('rephrase_jaccard_threshold') }},
            false
        ) as is_rephrase,
        cast(messages_paired.embedding_model as {{ dbt.type_string() }}) as embedding_model,
        cast(messages_paired.embedding_similarity as {{ type_double() }}) as embedding_similarity,
        case
            when messages_paired.previous_event_id is null
                then case when messages_paired.embedding_model is not null then false end
            when messages_paired.embedding_similarity is null then null
            else
                messages_paired.both_have_words
                and not messages_paired.is_same_wording
                and messages_paired.embedding_similarity > {{ var('semantic_rephrase_similarity') }}
        end as is_semantic_rephrase
    from messages_paired
)

{{ select_with_conversation_date('messages_compared') }}
