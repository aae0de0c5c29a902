{#- One row per sales conversation: the conversations of the patterns
    population (patterns_in_scope) with a sales signal (an event carrying
    `lead_score`, or a `stage_reached` event of the `sales` funnel), scored;
    objection_outcomes' daily partial counts them. Replaced conversation by
    conversation: a conversation's row changes with its events, its outcome
    (the clock) and its sales stages (the classifier). -#}
{{ config(
    unique_key='conversation_id',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set double = type_double() %}
{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

conversations as (
    select
        conversation_id,
        conversation_date,
        environment,
        outcome,
        user_turns,
        converted,
        converted_at
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        -- they all lie on the scope's days: Spark reads only those partitions
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

-- a sales signal: an event carrying `lead_score`, or a `stage_reached`
-- event of the `sales` funnel
signal_events as (
    select
        event_id,
        conversation_id,
        event_at,
        lead_score
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        is_known_type
        and (
            lead_score is not null
            or (event_type = 'stage_reached' and lower(funnel) = 'sales')
        )
),

signal_events_sequenced as (
    select
        signal_events.*,
        row_number() over (
            partition by signal_events.conversation_id
            order by signal_events.event_at, signal_events.event_id
        ) as event_sequence
    from signal_events
),

sales_signals as (
    select
        signal_events_sequenced.conversation_id,
        {{ first_value_by('signal_events_sequenced.lead_score', 'signal_events_sequenced.event_sequence') }}
            as lead_score
    from signal_events_sequenced
    group by signal_events_sequenced.conversation_id
),

sales_stages as (
    select
        conversation_id,
        stage
    from {{ ref('int_conversation_stages_combined') }}
    where
        funnel_name = 'sales'
    {%- if is_incremental() %}
        and conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

objections as (
    select
        conversation_id,
        objection
    from {{ ref('int_conversation_objections_detected') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
),

stages_reached as (
    select
        sales_stages.conversation_id,
        max(case when sales_stages.stage = 'qualified' then 1 else 0 end) = 1 as reached_qualified,
        max(case when sales_stages.stage = 'booked' then 1 else 0 end) = 1 as reached_booked
    from sales_stages
    group by sales_stages.conversation_id
),

objections_listed as (
    select
        objections.conversation_id,
        count(*) as objections_raised,
        {{ string_agg_ordered('objections.objection', "', '", 'objections.objection') }} as objection_list
    from objections
    group by objections.conversation_id
),

sales_conversations as (
    select
        conversations.conversation_id,
        conversations.conversation_date,
        conversations.outcome,
        conversations.user_turns,
        conversations.converted,
        conversations.converted_at,
        sales_signals.lead_score,
        coalesce(stages_reached.reached_qualified, false) as reached_qualified,
        coalesce(stages_reached.reached_booked, false) as reached_booked,
        coalesce(objections_listed.objections_raised, 0) as objections_raised,
        objections_listed.objection_list
    from sales_signals
    inner join conversations
        on sales_signals.conversation_id = conversations.conversation_id
    left join stages_reached
        on sales_signals.conversation_id = stages_reached.conversation_id
    left join objections_listed
        on sales_signals.conversation_id = objections_listed.conversation_id
    where {{ patterns_in_scope('conversations.environment') }}
),

-- qualification_score: weighted mean of the signals present:
-- lead (lead_score / 100, clipped to 0..1) weight 0.5, engagement
-- (min(user_turns, 5) / 5) weight 0.25, objections (1 - min(objections, 3) / 3)
-- weight 0.25; without a lead_score the other two carry the score.
sales_conversations_scored as (
    select
        sales_conversations.*,
        (
            coalesce(0.5 * least(greatest(sales_conversations.lead_score / 100.0, 0.0), 1.0), 0.0)
            + 0.25 * least(sales_conversations.user_turns, 5) / 5.0
            + 0.25 * (1.0 - least(sales_conversations.objections_raised, 3) / 3.0)
        ) / (case when sales_conversations.lead_score is null then 0.5 else 1.0 end) as qualification_score
    from sales_conversations
),

sales_outcomes as (
    select
        sales_conversations_scored.*,
        case
            when sales_conversations_scored.reached_booked then 'booked'
            when
                sales_conversations_scored.reached_qualified
                or sales_conversations_scored.qualification_score >= {{ var('qualification_score_threshold') }}
                then 'qualified'
            when sales_conversations_scored.outcome = 'in_progress' then 'open'
            else 'disqualified'
        end as sales_outcome
    from sales_conversations_scored
),

final as (
    select
        cast(sales_outcomes.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(sales_outcomes.conversation_date as {{ type_date() }}) as conversation_date,
        cast(sales_outcomes.outcome as {{ dbt.type_string() }}) as outcome,
        cast(sales_outcomes.converted as {{ dbt.type_boolean() }}) as converted,
        cast(sales_outcomes.converted_at as {{ dbt.type_timestamp() }}) as converted_at,
        cast(sales_outcomes.lead_score as {{ double }}) as lead_score,
        cast(sales_outcomes.user_turns as {{ dbt.type_bigint() }}) as user_turns,
        cast(sales_outcomes.objections_raised as {{ dbt.type_bigint() }}) as objections_raised,
        cast(sales_outcomes.objection_list as {{ dbt.type_string() }}) as objection_list,
        cast(sales_outcomes.qualification_score as {{ double }}) as qualification_score,
        cast(sales_outcomes.reached_qualified as {{ dbt.type_boolean() }}) as reached_qualified,
        cast(sales_outcomes.reached_booked as {{ dbt.type_boolean() }}) as reached_booked,
        cast(sales_outcomes.sales_outcome as {{ dbt.type_string() }}) as sales_outcome
    from sales_outcomes
)

select * from final
