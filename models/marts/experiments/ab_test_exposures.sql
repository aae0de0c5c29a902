{#- Publishes int_ab_test_exposures_checked under the enforced contract.
    Incremental like it: a run replaces the rows of the conversations with
    newly loaded events (scope_conversations); a changed experiments
    seed rebuilds every row. -#}
{{ config(
    unique_key=['test_name', 'conversation_id'],
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

exposures as (
    select
        test_name,
        conversation_id,
        user_id,
        variant,
        first_exposed_at,
        variant_count,
        expected_variant,
        assignment_ok
    from {{ ref('int_ab_test_exposures_checked') }}
    {%- if is_incremental() %}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

exposures_dated as (
    select
        exposures.*,
        conversation_days.conversation_date
    from exposures
    inner join conversation_days
        on exposures.conversation_id = conversation_days.conversation_id
)

select * from exposures_dated
