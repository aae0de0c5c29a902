{#- Publishes int_ab_test_exposures_checked under the enforced contract.
    Incremental like it: a run replaces the rows of the conversations with
    newly loaded events (conversations_to_refresh_cte); a changed experiments
    seed rebuilds every row. -#}
{{
    config(
        materialized=keyed_incremental_materialization(),
        incremental_strategy=keyed_incremental_strategy(),
        unique_key=['test_name', 'conversation_id'],
        on_schema_change='fail',
        pre_hook="{{ forget_stale_incremental_build(seeds=[ref('stg_seeds__experiments')]) }}",
        post_hook="{{ record_incremental_watermark(seeds=[ref('stg_seeds__experiments')]) }}",
    )
}}

-- depends_on: {{ ref('stg_events') }}
-- depends_on: {{ ref('stg_seeds__experiments') }}

with

{{ previous_build_cte() }}

{{ conversations_to_refresh_cte() }}

exposures as (
    select
        test_name,
        conversation_id,
        user_id,
        variant,
        first_exposed_at,
        variant_count,
        expected_variant,
        assignment_ok
    from {{ ref('int_ab_test_exposures_checked') }}
    where {{ is_conversation_to_refresh('conversation_id') }}
)

select * from exposures
