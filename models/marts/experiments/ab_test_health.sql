-- the statistics come from a Python model (scipy); this model pins the public types
with

health_scored as (
    select
        test_name,
        segment_type,
        segment_value,
        variants,
        exposed_conversations,
        contaminated_conversations,
        contamination_rate,
        assignment_mismatches,
        assignment_mismatch_rate,
        sessions,
        srm_chi_square,
        srm_p_value,
        srm_detected,
        has_enough_traffic,
        enough_sample,
        problems,
        is_healthy,
        verdict
    from {{ ref('int_ab_test_health_scored') }}
),

health_typed as (
    select
        cast(health_scored.test_name as varchar) as test_name,
        cast(health_scored.segment_type as varchar) as segment_type,
        cast(health_scored.segment_value as varchar) as segment_value,
        cast(health_scored.variants as integer) as variants,
        cast(health_scored.exposed_conversations as bigint) as exposed_conversations,
        cast(health_scored.contaminated_conversations as bigint) as contaminated_conversations,
        cast(health_scored.contamination_rate as double) as contamination_rate,
        cast(health_scored.assignment_mismatches as bigint) as assignment_mismatches,
        cast(health_scored.assignment_mismatch_rate as double) as assignment_mismatch_rate,
        cast(health_scored.sessions as bigint) as sessions,
        cast(health_scored.srm_chi_square as double) as srm_chi_square,
        cast(health_scored.srm_p_value as double) as srm_p_value,
        cast(health_scored.srm_detected as boolean) as srm_detected,
        cast(health_scored.has_enough_traffic as boolean) as has_enough_traffic,
        cast(health_scored.enough_sample as boolean) as enough_sample,
        cast(health_scored.problems as varchar) as problems,
        cast(health_scored.is_healthy as boolean) as is_healthy,
        cast(health_scored.verdict as varchar) as verdict
    from health_scored
)

select * from health_typed
