-- the sum over days and variants of int_ab_test_variant_days_counted
{{ config(materialized='view') }}
with

variant_days as (
    select
        test_name,
        segment_type,
        segment_value,
        exposed_conversations,
        contaminated_conversations,
        assignment_mismatches
    from {{ ref('int_ab_test_variant_days_counted') }}
),

exposure_quality as (
    select
        variant_days.test_name,
        variant_days.segment_type,
        variant_days.segment_value,
        cast(sum(variant_days.exposed_conversations) as {{ dbt.type_bigint() }}) as exposed_conversations,
        cast(sum(variant_days.contaminated_conversations) as {{ dbt.type_bigint() }})
            as contaminated_conversations,
        cast(sum(variant_days.assignment_mismatches) as {{ dbt.type_bigint() }}) as assignment_mismatches
    from variant_days
    group by
        variant_days.test_name,
        variant_days.segment_type,
        variant_days.segment_value
)

select * from exposure_quality
