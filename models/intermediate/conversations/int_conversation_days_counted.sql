{#- The partial of every "all conversations" denominator of a whole-history
    mart (funnel_summary, funnel_summary_since): conversations per day.
    Replaced a whole conversation_date at a time: a run recomputes the days
    of the conversations with new events (and the day a late event moved
    one from). -#}
{{ config(
    unique_key='conversation_date',
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations as (
    select conversation_date
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

days_counted as (
    select
        cast(conversations.conversation_date as {{ type_date() }}) as conversation_date,
        cast(count(*) as {{ dbt.type_bigint() }}) as conversations
    from conversations
    group by conversations.conversation_date
)

select * from days_counted
