{#- Publishes int_ab_test_exposures_checked under the enforced contract.
    Incremental like it: a run replaces the rows of the conversations with
    newly loaded events (conversations_to_refresh_cte); a changed experiments
    seed rebuilds every row. -#}

-- depends_on: {{ ref('stg_events') }}
-- depends_on: {{ ref('stg_seeds__experiments') }}

with

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
    where {{ touched('conversation_id') }}
)

select * from exposures
