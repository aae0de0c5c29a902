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
        first_response_ms
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
        count(exposures_segmented.variant) as sessions,
        count(case when exposures_segmented.converted_after_exposure then 1 end) as conversions,
        count(case when exposures_segmented.was_completed then 1 end) as completions,
        count(case when exposures_segmented.had_handoff then 1 end) as handoffs,
        count(exposures_segmented.satisfaction_score) as satisfaction_n,
        avg(exposures_segmented.satisfaction_score) as satisfaction_mean,
        var_samp(exposures_segmented.satisfaction_score) as satisfaction_variance,
        count(exposures_segmented.first_response_ms) as first_response_n,
        avg(exposures_segmented.first_response_ms) as first_response_mean,
        var_samp(exposures_segmented.first_response_ms) as first_response_variance
    from variants_by_segment
    left join exposures_segmented
        on
            variants_by_segment.test_name = exposures_segmented.test_name
            and variants_by_segment.variant = exposures_segmented.variant
            and variants_by_segment.segment_type = exposures_segmented.segment_type
            and variants_by_segment.segment_value = exposures_segmented.segment_value
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
