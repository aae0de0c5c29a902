{{ config(meta={'dagster': {'ref': {'name': 'funnel_summary'}}}) }}

-- The first stage's conversion_rate is reached / every conversation in
-- fct_conversations, not only those that entered the funnel.
with

all_conversations as (
    select count(*) as conversations
    from {{ ref('fct_conversations') }}
),

first_stages as (
    select
        funnel_summary.funnel_name,
        funnel_summary.reached,
        funnel_summary.conversion_rate
    from {{ ref('funnel_summary') }} as funnel_summary
    where funnel_summary.previous_stage is null
),

mismatches as (
    select
        first_stages.*,
        all_conversations.conversations
    from first_stages
    cross join all_conversations
    where
        (all_conversations.conversations = 0 and first_stages.conversion_rate is not null)
        or abs(
            first_stages.conversion_rate
            - cast(first_stages.reached as {{ type_double() }}) / nullif(all_conversations.conversations, 0)
        ) > 1e-12
)

select * from mismatches
