-- the statistics come from a Python model (scipy); this model pins the public types
{{ config(materialized='view') }}
with

metrics_scored as (
    select
        test_name,
        variant,
        is_control,
        metric_name,
        metric_role,
        metric_type,
        higher_is_better,
        sample_size,
        value,
        control_value,
        difference,
        relative_difference,
        test_statistic,
        p_value,
        p_value_adjusted,
        ci_low,
        ci_high,
        sequential_ci_low,
        sequential_ci_high,
        is_significant,
        guardrail_breached
    from {{ ref('int_ab_test_metrics_scored') }}
),

metrics_typed as (
    select
        cast(metrics_scored.test_name as {{ dbt.type_string() }}) as test_name,
        cast(metrics_scored.variant as {{ dbt.type_string() }}) as variant,
        cast(metrics_scored.is_control as {{ dbt.type_boolean() }}) as is_control,
        cast(metrics_scored.metric_name as {{ dbt.type_string() }}) as metric_name,
        cast(metrics_scored.metric_role as {{ dbt.type_string() }}) as metric_role,
        cast(metrics_scored.metric_type as {{ dbt.type_string() }}) as metric_type,
        cast(metrics_scored.higher_is_better as {{ dbt.type_boolean() }}) as higher_is_better,
        cast(metrics_scored.sample_size as {{ dbt.type_bigint() }}) as sample_size,
        -- named `value` as in metrics_daily
        cast(metrics_scored.value as {{ type_double() }}) as value,  -- noqa: RF04
        cast(metrics_scored.control_value as {{ type_double() }}) as control_value,
        cast(metrics_scored.difference as {{ type_double() }}) as difference,
        cast(metrics_scored.relative_difference as {{ type_double() }}) as relative_difference,
        cast(metrics_scored.test_statistic as {{ type_double() }}) as test_statistic,
        cast(metrics_scored.p_value as {{ type_double() }}) as p_value,
        cast(metrics_scored.p_value_adjusted as {{ type_double() }}) as p_value_adjusted,
        cast(metrics_scored.ci_low as {{ type_double() }}) as ci_low,
        cast(metrics_scored.ci_high as {{ type_double() }}) as ci_high,
        cast(metrics_scored.sequential_ci_low as {{ type_double() }}) as sequential_ci_low,
        cast(metrics_scored.sequential_ci_high as {{ type_double() }}) as sequential_ci_high,
        cast(metrics_scored.is_significant as {{ dbt.type_boolean() }}) as is_significant,
        cast(metrics_scored.guardrail_breached as {{ dbt.type_boolean() }}) as guardrail_breached
    from metrics_scored
)

select * from metrics_typed
