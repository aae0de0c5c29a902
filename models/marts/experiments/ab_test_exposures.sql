{#- Publishes int_ab_test_exposures_checked under the enforced contract. -#}
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
)

select * from exposures
