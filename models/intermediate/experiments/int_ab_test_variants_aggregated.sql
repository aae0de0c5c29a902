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

exposures as (
    select
        test_name,
        variant,
        channel,
        converted_after_exposure,
        was_completed,
        had_handoff,
        satisfaction_score,
        first_response_ms,
        quality_score
    from {{ ref('int_ab_test_conversations_measured') }}
    where not is_contaminated
),

exposures_segmented as (
    select
        exposures.*,
        'all' as segment_type,
        'all' as segment_value
    from exposures
    union all
    select
        exposures.*,
        'channel' as segment_type,
        exposures.channel as segment_value
    from exposures
),

-- Means first, then the sample variance as the sum of squared deviations
-- from them (two passes, exact sums): the same bits in any row order, and no
-- cancellation of sum(x^2) - n * mean^2.
variant_means as (
    select
        exposures_segmented.test_name,
        exposures_segmented.variant,
        exposures_segmented.segment_type,
        exposures_segmented.segment_value,
        {{ exact_avg('exposures_segmented.satisfaction_score') }} as satisfaction_mean,
        {{ exact_avg('exposures_segmented.first_response_ms') }} as first_response_mean,
        {{ exact_avg('exposures_segmented.quality_score') }} as quality_mean
    from exposures_segmented
    group by
        exposures_segmented.test_name,
        exposures_segmented.variant,
        exposures_segmented.segment_type,
        exposures_segmented.segment_value
),

exposures_centered as (
    select
        exposures_segmented.*,
        variant_means.satisfaction_mean,
        variant_means.first_response_mean,
        exposures_segmented.satisfaction_score - variant_means.satisfaction_mean
            as satisfaction_deviation,
        exposures_segmented.first_response_ms - variant_means.first_response_mean
            as first_response_deviation,
        variant_means.quality_mean,
        exposures_segmented.quality_score - variant_means.quality_mean as quality_deviation
    from exposures_segmented
    inner join variant_means
        on
            exposures_segmented.test_name = variant_means.test_name
            and exposures_segmented.variant = variant_means.variant
            and exposures_segmented.segment_type = variant_means.segment_type
            and exposures_segmented.segment_value = variant_means.segment_value
),

-- every seed variant appears in every segment of its test, with 0 sessions if need be
segments as (
    select
        'all' as segment_type,
        'all' as segment_value,
        experiments.test_name
    from experiments
    union
    select distinct
        exposures_segmented.segment_type,
        exposures_segmented.segment_value,
        exposures_segmented.test_name
    from exposures_segmented
    where exposures_segmented.segment_type = 'channel'
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
        count(exposures_centered.variant) as sessions,
        count(case when exposures_centered.converted_after_exposure then 1 end) as conversions,
        count(case when exposures_centered.was_completed then 1 end) as completions,
        count(case when exposures_centered.had_handoff then 1 end) as handoffs,
        count(exposures_centered.satisfaction_score) as satisfaction_n,
        max(exposures_centered.satisfaction_mean) as satisfaction_mean,
        {{ exact_sum('exposures_centered.satisfaction_deviation * exposures_centered.satisfaction_deviation') }}
        / nullif(count(exposures_centered.satisfaction_score) - 1, 0) as satisfaction_variance,
        count(exposures_centered.first_response_ms) as first_response_n,
        max(exposures_centered.first_response_mean) as first_response_mean,
        {{ exact_sum('exposures_centered.first_response_deviation * exposures_centered.first_response_deviation') }}
        / nullif(count(exposures_centered.first_response_ms) - 1, 0) as first_response_variance,
        count(exposures_centered.quality_score) as quality_n,
        max(exposures_centered.quality_mean) as quality_mean,
        {{ exact_sum('exposures_centered.quality_deviation * exposures_centered.quality_deviation') }}
        / nullif(count(exposures_centered.quality_score) - 1, 0) as quality_variance
    from variants_by_segment
    left join exposures_centered
        on
            variants_by_segment.test_name = exposures_centered.test_name
            and variants_by_segment.variant = exposures_centered.variant
            and variants_by_segment.segment_type = exposures_centered.segment_type
            and variants_by_segment.segment_value = exposures_centered.segment_value
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
