with

exposures as (
    select
        test_name,
        channel,
        is_contaminated,
        assignment_ok
    from {{ ref('int_ab_test_conversations_measured') }}
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

exposure_quality as (
    select
        exposures_segmented.test_name,
        exposures_segmented.segment_type,
        exposures_segmented.segment_value,
        count(*) as exposed_conversations,
        count(case when exposures_segmented.is_contaminated then 1 end) as contaminated_conversations,
        count(
            case when not exposures_segmented.assignment_ok then 1 end
        ) as assignment_mismatches
    from exposures_segmented
    group by
        exposures_segmented.test_name,
        exposures_segmented.segment_type,
        exposures_segmented.segment_value
)

select * from exposure_quality
