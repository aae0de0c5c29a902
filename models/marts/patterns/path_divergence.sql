-- The scored divergence rows (path_divergence_scored, a Python model) under
-- an enforced contract.
{{ config(materialized='view') }}
with

scored as (
    select
        comparison,
        segment_type,
        segment_value,
        scope,
        depth,
        step,
        successful_with_step,
        successful_conversations,
        failed_with_step,
        failed_conversations,
        share_successful,
        share_failed,
        share_difference,
        more_common_in,
        statistic,
        p_value,
        test_method,
        p_value_adjusted,
        is_significant,
        divergence_rank,
        is_first_divergence
    from {{ ref('path_divergence_scored') }}
),

final as (
    select
        cast(scored.comparison as {{ dbt.type_string() }}) as comparison,
        cast(scored.segment_type as {{ dbt.type_string() }}) as segment_type,
        cast(scored.segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(scored.scope as {{ dbt.type_string() }}) as scope,
        cast(scored.depth as {{ dbt.type_int() }}) as depth,  -- noqa: RF04
        cast(scored.step as {{ dbt.type_string() }}) as step,
        cast(scored.successful_with_step as {{ dbt.type_bigint() }}) as successful_with_step,
        cast(scored.successful_conversations as {{ dbt.type_bigint() }}) as successful_conversations,
        cast(scored.failed_with_step as {{ dbt.type_bigint() }}) as failed_with_step,
        cast(scored.failed_conversations as {{ dbt.type_bigint() }}) as failed_conversations,
        cast(scored.share_successful as {{ type_double() }}) as share_successful,
        cast(scored.share_failed as {{ type_double() }}) as share_failed,
        cast(scored.share_difference as {{ type_double() }}) as share_difference,
        cast(scored.more_common_in as {{ dbt.type_string() }}) as more_common_in,
        cast(scored.statistic as {{ type_double() }}) as statistic,
        cast(scored.p_value as {{ type_double() }}) as p_value,
        cast(scored.test_method as {{ dbt.type_string() }}) as test_method,
        cast(scored.p_value_adjusted as {{ type_double() }}) as p_value_adjusted,
        cast(scored.is_significant as {{ dbt.type_boolean() }}) as is_significant,
        cast(scored.divergence_rank as {{ dbt.type_int() }}) as divergence_rank,
        cast(scored.is_first_divergence as {{ dbt.type_boolean() }}) as is_first_divergence
    from scored
)

select * from final
