{#- Per objection: conversion after it was raised vs in sales conversations
    that did not raise it, summed from the daily partial. -#}
{{ config(materialized='view') }}

{%- set double = type_double() %}
with

objection_days as (
    select
        objection,
        sales_conversations,
        raised_conversations,
        converted_after_raised,
        not_raised_conversations,
        converted_not_raised
    from {{ ref('int_objection_days_counted') }}
),

objections_counted as (
    select
        objection_days.objection,
        sum(objection_days.sales_conversations) as sales_conversations,
        sum(objection_days.raised_conversations) as raised_conversations,
        sum(objection_days.converted_after_raised) as converted_after_raised,
        sum(objection_days.not_raised_conversations) as not_raised_conversations,
        sum(objection_days.converted_not_raised) as converted_not_raised
    from objection_days
    group by objection_days.objection
),

objections_rated as (
    select
        objections_counted.*,
        cast(objections_counted.converted_after_raised as {{ double }})
        / nullif(objections_counted.raised_conversations, 0) as conversion_rate_after_raised,
        cast(objections_counted.converted_not_raised as {{ double }})
        / nullif(objections_counted.not_raised_conversations, 0) as conversion_rate_not_raised
    from objections_counted
),

final as (
    select
        cast(objections_rated.objection as {{ dbt.type_string() }}) as objection,
        cast(objections_rated.sales_conversations as {{ dbt.type_bigint() }}) as sales_conversations,
        cast(objections_rated.raised_conversations as {{ dbt.type_bigint() }}) as raised_conversations,
        cast(
            cast(objections_rated.raised_conversations as {{ double }})
            / nullif(objections_rated.sales_conversations, 0) as {{ double }}
        ) as raised_share,
        cast(objections_rated.converted_after_raised as {{ dbt.type_bigint() }}) as converted_after_raised,
        cast(objections_rated.conversion_rate_after_raised as {{ double }}) as conversion_rate_after_raised,
        cast(
            {{ wilson_interval_bound(
                'objections_rated.conversion_rate_after_raised', 'objections_rated.raised_conversations', 'low'
            ) }} as {{ double }}
        ) as conversion_rate_after_raised_ci_low,
        cast(
            {{ wilson_interval_bound(
                'objections_rated.conversion_rate_after_raised', 'objections_rated.raised_conversations', 'high'
            ) }} as {{ double }}
        ) as conversion_rate_after_raised_ci_high,
        cast(objections_rated.not_raised_conversations as {{ dbt.type_bigint() }}) as not_raised_conversations,
        cast(objections_rated.converted_not_raised as {{ dbt.type_bigint() }}) as converted_not_raised,
        cast(objections_rated.conversion_rate_not_raised as {{ double }}) as conversion_rate_not_raised,
        cast(
            objections_rated.conversion_rate_after_raised - objections_rated.conversion_rate_not_raised
            as {{ double }}
        ) as conversion_rate_difference
    from objections_rated
)

select * from final
