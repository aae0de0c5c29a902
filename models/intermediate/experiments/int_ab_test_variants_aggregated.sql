-- The sum over days of int_ab_test_variant_days_counted for every seed
-- variant and segment; the means and sample variances are computed from the
-- exact sums by the Python model that tests them (int_ab_test_metrics_scored).
{{ config(materialized='view') }}
with

experiments as (
    select
        test_name,
        variant,
        variant_order,
        is_control,
        weight,
        primary_metric
    from {{ ref('stg_seeds__experiments') }}
),

variant_days as (
    select
        test_name,
        variant,
        segment_type,
        segment_value,
        sessions,
        conversions,
        completions,
        handoffs,
        {{ exact_moment_columns('satisfaction') }},
        {{ exact_moment_columns('first_response') }},
        {{ exact_moment_columns('quality') }}
    from {{ ref('int_ab_test_variant_days_counted') }}
),

-- every seed variant appears in every segment of its test, with 0 sessions
-- if need be: `all`, and each channel with a session of the test
segments as (
    select
        'all' as segment_type,
        'all' as segment_value,
        experiments.test_name
    from experiments
    union
    select distinct
        variant_days.segment_type,
        variant_days.segment_value,
        variant_days.test_name
    from variant_days
    where variant_days.segment_type = 'channel' and variant_days.sessions > 0
),

variants_by_segment as (
    select
        experiments.test_name,
        experiments.variant,
        experiments.variant_order,
        experiments.is_control,
        experiments.weight,
        experiments.primary_metric,
        segments.segment_type,
        segments.segment_value
    from experiments
    inner join segments
        on experiments.test_name = segments.test_name
),

variants_aggregated as (
    select
        variants_by_segment.test_name,
        variants_by_segment.variant,
        variants_by_segment.variant_order,
        variants_by_segment.is_control,
        variants_by_segment.weight,
        variants_by_segment.primary_metric,
        variants_by_segment.segment_type,
        variants_by_segment.segment_value,
        cast(coalesce(sum(variant_days.sessions), 0) as {{ dbt.type_bigint() }}) as sessions,
        cast(coalesce(sum(variant_days.conversions), 0) as {{ dbt.type_bigint() }}) as conversions,
        cast(coalesce(sum(variant_days.completions), 0) as {{ dbt.type_bigint() }}) as completions,
        cast(coalesce(sum(variant_days.handoffs), 0) as {{ dbt.type_bigint() }}) as handoffs,
        {{ exact_moment_totals('variant_days', 'satisfaction') }},
        {{ exact_moment_totals('variant_days', 'first_response') }},
        {{ exact_moment_totals('variant_days', 'quality') }}
    from variants_by_segment
    left join variant_days
        on
            variants_by_segment.test_name = variant_days.test_name
            and variants_by_segment.variant = variant_days.variant
            and variants_by_segment.segment_type = variant_days.segment_type
            and variants_by_segment.segment_value = variant_days.segment_value
    group by
        variants_by_segment.test_name,
        variants_by_segment.variant,
        variants_by_segment.variant_order,
        variants_by_segment.is_control,
        variants_by_segment.weight,
        variants_by_segment.primary_metric,
        variants_by_segment.segment_type,
        variants_by_segment.segment_value
)

select * from variants_aggregated
