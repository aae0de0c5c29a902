{#- The counts of int_ab_test_variant_days_counted for the whole population
    (segment all), published per day so that any period's sessions and
    conversions per variant are a small sum (GET /api/analytics/dashboard's
    ab_tests). Replaced day by day, the days the partial replaces. -#}
{{ config(
    unique_key=['conversation_date', 'test_name', 'variant'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

variant_days as (
    select
        conversation_date,
        test_name,
        variant,
        exposed_conversations,
        contaminated_conversations,
        sessions,
        conversions
    from {{ ref('int_ab_test_variant_days_counted') }}
    where
        segment_type = 'all'
    {%- if is_incremental() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

variant_days_typed as (
    select
        cast(variant_days.conversation_date as {{ type_date() }}) as conversation_date,
        cast(variant_days.test_name as {{ dbt.type_string() }}) as test_name,
        cast(variant_days.variant as {{ dbt.type_string() }}) as variant,
        cast(variant_days.exposed_conversations as {{ dbt.type_bigint() }}) as exposed_conversations,
        cast(variant_days.contaminated_conversations as {{ dbt.type_bigint() }}) as contaminated_conversations,
        cast(variant_days.sessions as {{ dbt.type_bigint() }}) as sessions,
        cast(variant_days.conversions as {{ dbt.type_bigint() }}) as conversions
    from variant_days
)

select * from variant_days_typed
