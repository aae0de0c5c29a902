{{ config(meta={'dagster': {'ref': {'name': 'ab_test_variant_daily'}}}) }}

{#- Summed over every day, ab_test_variant_daily's sessions and conversions
    are ab_test_results' for every variant of the experiments seed (a
    variant without sessions sums to nothing, i.e. 0): any period's sum of
    days counts what the whole-test results count. -#}

with

variant_days_summed as (
    select
        ab_test_variant_daily.test_name,
        ab_test_variant_daily.variant,
        sum(ab_test_variant_daily.sessions) as sessions,
        sum(ab_test_variant_daily.conversions) as conversions
    from {{ ref('ab_test_variant_daily') }} as ab_test_variant_daily
    group by
        ab_test_variant_daily.test_name,
        ab_test_variant_daily.variant
),

mismatches as (
    select
        ab_test_results.test_name,
        ab_test_results.variant,
        ab_test_results.sessions as expected_sessions,
        variant_days_summed.sessions as summed_sessions,
        ab_test_results.conversions as expected_conversions,
        variant_days_summed.conversions as summed_conversions
    from {{ ref('ab_test_results') }} as ab_test_results
    left join variant_days_summed
        on
            ab_test_results.test_name = variant_days_summed.test_name
            and ab_test_results.variant = variant_days_summed.variant
    where
        coalesce(variant_days_summed.sessions, 0) != ab_test_results.sessions
        or coalesce(variant_days_summed.conversions, 0) != ab_test_results.conversions
)

select * from mismatches
