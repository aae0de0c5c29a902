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

-- the day of each conversation (the Spark partition of its rows:
-- docs/spark.md); read whole, so it narrows no body to its scope
conversation_days as (
    select
        conversation_id,
        conversation_date
    from {{ ref('scope_conversation_lifecycle') }}
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
),

conversation_stages_dated as (
    select
        conversation_stages.*,
        conversation_days.conversation_date
    from conversation_stages
    inner join conversation_days
        on conversation_stages.conversation_id = conversation_days.conversation_id
)

select * from conversation_stages_dated
