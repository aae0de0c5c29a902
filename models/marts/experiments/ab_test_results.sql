-- the statistics come from a Python model (scipy); this model pins the public types
{{ config(materialized='view') }}
with

results_scored as (
    select
        test_name,
        variant,
        is_control,
        sessions,
        conversions,
        conversion_rate,
        absolute_lift,
        relative_lift,
        z_score,
        p_value,
        ci_low,
        ci_high,
        is_significant,
        srm_p_value,
        srm_detected,
        enough_sample,
        variant_order,
        weight,
        srm_chi_square,
        total_sessions,
        has_enough_traffic,
        sequential_ci_low,
        sequential_ci_high
    from {{ ref('int_ab_test_results_scored') }}
),

experiments as (
    select
        test_name,
        start_date,
        end_date
    from {{ ref('stg_seeds__experiments') }}
),

-- a test's dates may be written on one of its rows or on all of them: the
-- earliest start and the latest end written on any
test_dates as (
    select
        experiments.test_name,
        min(experiments.start_date) as start_date,
        max(experiments.end_date) as end_date
    from experiments
    group by experiments.test_name
),

results_typed as (
    select
        cast(results_scored.test_name as {{ dbt.type_string() }}) as test_name,
        cast(results_scored.variant as {{ dbt.type_string() }}) as variant,
        cast(results_scored.is_control as {{ dbt.type_boolean() }}) as is_control,
        cast(results_scored.sessions as {{ dbt.type_bigint() }}) as sessions,
        cast(results_scored.conversions as {{ dbt.type_bigint() }}) as conversions,
        cast(results_scored.conversion_rate as {{ type_double() }}) as conversion_rate,
        cast(results_scored.absolute_lift as {{ type_double() }}) as absolute_lift,
        cast(results_scored.relative_lift as {{ type_double() }}) as relative_lift,
        cast(results_scored.z_score as {{ type_double() }}) as z_score,
        cast(results_scored.p_value as {{ type_double() }}) as p_value,
        cast(results_scored.ci_low as {{ type_double() }}) as ci_low,
        cast(results_scored.ci_high as {{ type_double() }}) as ci_high,
        cast(results_scored.is_significant as {{ dbt.type_boolean() }}) as is_significant,
        cast(results_scored.srm_p_value as {{ type_double() }}) as srm_p_value,
        cast(results_scored.srm_detected as {{ dbt.type_boolean() }}) as srm_detected,
        cast(results_scored.enough_sample as {{ dbt.type_boolean() }}) as enough_sample,
        cast(results_scored.variant_order as {{ dbt.type_int() }}) as variant_order,
        cast(results_scored.weight as {{ type_double() }}) as weight,
        cast(results_scored.srm_chi_square as {{ type_double() }}) as srm_chi_square,
        cast(results_scored.total_sessions as {{ dbt.type_bigint() }}) as total_sessions,
        cast(results_scored.has_enough_traffic as {{ dbt.type_boolean() }}) as has_enough_traffic,
        cast(results_scored.sequential_ci_low as {{ type_double() }}) as sequential_ci_low,
        cast(results_scored.sequential_ci_high as {{ type_double() }}) as sequential_ci_high,
        cast(test_dates.start_date as {{ type_date() }}) as start_date,
        cast(test_dates.end_date as {{ type_date() }}) as end_date
    from results_scored
    left join test_dates
        on results_scored.test_name = test_dates.test_name
)

select * from results_typed
