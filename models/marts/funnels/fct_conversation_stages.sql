{#- Publishes the stages reached (int_conversation_stages_combined, through
    int_conversation_stages_sequenced, which adds the in-order reading)
    under the enforced contract. Incremental like them: a run replaces every
    row of the conversations with newly loaded events or new stage
    classifications. -#}
{{ config(
    unique_key=['conversation_id', 'funnel_name', 'stage'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

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
    where
        is_reached
    {%- if is_incremental() %}
        and conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
)

{{ select_with_conversation_date('conversation_stages') }}
