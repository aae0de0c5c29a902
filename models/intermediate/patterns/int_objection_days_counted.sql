{#- The partial objection_outcomes sums: per objection of the lexicon and
    day, the sales conversations of that day (fct_sales_conversations)
    that raised it or not, and of each group how many converted (after the
    first raising, for those that raised it). Replaced a whole
    conversation_date at a time: a run recomputes the days of the
    conversations with new events. -#}
{{ config(
    unique_key=['objection', 'conversation_date'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

sales_conversations as (
    select
        conversation_id,
        conversation_date,
        converted_at
    from {{ ref('fct_sales_conversations') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

objections as (
    select
        conversation_id,
        {{ conversation_date_on_spark() }}
        objection,
        first_raised_at
    from {{ ref('int_conversation_objections_detected') }}
    where conversation_id in (select sales_conversations.conversation_id from sales_conversations)
),

lexicon_objections as (
    select distinct objection
    from {{ ref('objection_lexicon') }}
),

-- every sales conversation x every objection of the lexicon, raised or not
conversation_objections as (
    select
        lexicon_objections.objection,
        sales_conversations.conversation_date,
        objections.first_raised_at is not null as was_raised,
        sales_conversations.converted_at is not null as converted,
        -- converted after raising: a conversion at or after the first raising
        objections.first_raised_at is not null
        and sales_conversations.converted_at >= objections.first_raised_at as converted_after_raised
    from sales_conversations
    cross join lexicon_objections
    left join objections
        on
            {{ same_conversation('sales_conversations', 'objections', 'sales_conversations.conversation_date') }}
            and lexicon_objections.objection = objections.objection
),

objection_days_counted as (
    select
        cast(conversation_objections.objection as {{ dbt.type_string() }}) as objection,
        cast(conversation_objections.conversation_date as {{ type_date() }}) as conversation_date,
        cast(count(*) as {{ dbt.type_bigint() }}) as sales_conversations,
        cast(sum(case when conversation_objections.was_raised then 1 else 0 end) as {{ dbt.type_bigint() }})
            as raised_conversations,
        cast(
            sum(case when conversation_objections.converted_after_raised then 1 else 0 end)
            as {{ dbt.type_bigint() }}
        ) as converted_after_raised,
        cast(sum(case when not conversation_objections.was_raised then 1 else 0 end) as {{ dbt.type_bigint() }})
            as not_raised_conversations,
        cast(
            sum(
                case
                    when not conversation_objections.was_raised and conversation_objections.converted then 1
                    else 0
                end
            ) as {{ dbt.type_bigint() }}
        ) as converted_not_raised
    from conversation_objections
    group by
        conversation_objections.objection,
        conversation_objections.conversation_date
)

select * from objection_days_counted
