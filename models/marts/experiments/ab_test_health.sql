-- the statistics come from a Python model (scipy); this model pins the public types
{{ config(materialized='view') }}
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
        cast(health_scored.test_name as {{ dbt.type_string() }}) as test_name,
        cast(health_scored.segment_type as {{ dbt.type_string() }}) as segment_type,
        cast(health_scored.segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(health_scored.variants as {{ dbt.type_int() }}) as variants,
        cast(health_scored.exposed_conversations as {{ dbt.type_bigint() }}) as exposed_conversations,
        cast(health_scored.contaminated_conversations as {{ dbt.type_bigint() }}) as contaminated_conversations,
        cast(health_scored.contamination_rate as {{ type_double() }}) as contamination_rate,
        cast(health_scored.assignment_mismatches as {{ dbt.type_bigint() }}) as assignment_mismatches,
        cast(health_scored.assignment_mismatch_rate as {{ type_double() }}) as assignment_mismatch_rate,
        cast(health_scored.sessions as {{ dbt.type_bigint() }}) as sessions,
        cast(health_scored.srm_chi_square as {{ type_double() }}) as srm_chi_square,
        cast(health_scored.srm_p_value as {{ type_double() }}) as srm_p_value,
        cast(health_scored.srm_detected as {{ dbt.type_boolean() }}) as srm_detected,
        cast(health_scored.has_enough_traffic as {{ dbt.type_boolean() }}) as has_enough_traffic,
        cast(health_scored.enough_sample as {{ dbt.type_boolean() }}) as enough_sample,
        cast(health_scored.problems as {{ dbt.type_string() }}) as problems,
        cast(health_scored.is_healthy as {{ dbt.type_boolean() }}) as is_healthy,
        cast(health_scored.verdict as {{ dbt.type_string() }}) as verdict
    from health_scored
)

select * from health_typed
