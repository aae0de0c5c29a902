{#- Publishes int_ab_test_exposures_checked under the enforced contract.
    Incremental like it: a run replaces the rows of the conversations with
    newly loaded events (scope_conversations); a changed experiments
    seed rebuilds every row. -#}
{{ config(
    unique_key=['test_name', 'conversation_id'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
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
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
)

{{ select_with_conversation_date('exposures') }}
