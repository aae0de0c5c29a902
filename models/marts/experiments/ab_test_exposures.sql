{#- Publishes int_ab_test_exposures_checked under the enforced contract: a
    view, so the rows are stored once, in the intermediate model. -#}
{{ config(
    materialized='view',
    unique_key=['test_name', 'conversation_id'],
) }}

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
