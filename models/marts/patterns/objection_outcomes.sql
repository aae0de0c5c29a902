{#- Per objection: conversion after it was raised vs in sales conversations
    that did not raise it. -#}
{%- set double = type_double() %}
with

sales_conversations as (
    select conversation_id
    from {{ ref('fct_sales_conversations') }}
),

conversations as (
    select
        conversation_id,
        converted_at
    from {{ ref('fct_conversations') }}
),

objections as (
    select
        conversation_id,
        objection,
        first_raised_at
    from {{ ref('int_conversation_objections_detected') }}
),

lexicon_objections as (
    select distinct objection
    from {{ ref('objection_lexicon') }}
),

-- every sales conversation x every objection of the lexicon, raised or not
conversation_objections as (
    select
        lexicon_objections.objection,
        sales_conversations.conversation_id,
        objections.first_raised_at is not null as was_raised,
        conversations.converted_at is not null as converted,
        -- converted after raising: a conversion at or after the first raising
        objections.first_raised_at is not null
        and conversations.converted_at >= objections.first_raised_at as converted_after_raised
    from sales_conversations
    cross join lexicon_objections
    inner join conversations
        on sales_conversations.conversation_id = conversations.conversation_id
    left join objections
        on
            sales_conversations.conversation_id = objections.conversation_id
            and lexicon_objections.objection = objections.objection
),

objections_counted as (
    select
        conversation_objections.objection,
        count(*) as sales_conversations,
        sum(case when conversation_objections.was_raised then 1 else 0 end) as raised_conversations,
        sum(case when conversation_objections.converted_after_raised then 1 else 0 end)
            as converted_after_raised,
        sum(case when not conversation_objections.was_raised then 1 else 0 end) as not_raised_conversations,
        sum(case when not conversation_objections.was_raised and conversation_objections.converted then 1 else 0 end)
            as converted_not_raised
    from conversation_objections
    group by conversation_objections.objection
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
