{#- One row per conversation x intervention rule that fired, with what
    happened to the conversation afterwards (outcome_after, first that holds):
      handed_off   a handoff_requested event at or after the intervention;
      resolved     the support funnel's `resolved` stage (the classifier, or
                   conversation_completed);
      abandoned    the conversation is abandoned (explicit or inferred, as
                   fct_conversations says);
      in_progress  the conversation is still going (outcome in_progress);
      unresolved   it ended some other way (ended, converted, not resolved).
    Replaced conversation by conversation: new events, the abandonment clock
    and new stage classifications all change outcome_after. -#}
{{ config(
    unique_key=['conversation_id', 'rule_name'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

interventions as (
    select
        conversation_id,
        rule_name,
        triggered_at,
        fired_at,
        stage_at_trigger,
        classifier,
        user_turns_at_trigger
    from {{ ref('int_interventions_triggered') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
),

conversations as (
    select
        conversation_id,
        outcome,
        was_abandoned
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

resolved_conversations as (
    select distinct conversation_stages.conversation_id
    from {{ ref('int_conversation_stages_combined') }} as conversation_stages
    where
        conversation_stages.funnel_name = 'support'
        and conversation_stages.stage = 'resolved'
    {%- if is_incremental() %}
        and conversation_stages.conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

handoffs as (
    select
        conversation_id,
        event_at
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        event_type = 'handoff_requested'
        and is_known_type
),

handoffs_after as (
    select
        interventions.conversation_id,
        interventions.rule_name
    from interventions
    inner join handoffs
        on
            interventions.conversation_id = handoffs.conversation_id
            and interventions.triggered_at <= handoffs.event_at
    group by
        interventions.conversation_id,
        interventions.rule_name
),

interventions_followed as (
    select
        interventions.conversation_id,
        interventions.rule_name,
        interventions.triggered_at,
        cast(interventions.triggered_at as {{ type_date() }}) as triggered_date,
        interventions.fired_at,
        interventions.stage_at_trigger,
        interventions.classifier,
        interventions.user_turns_at_trigger,
        handoffs_after.rule_name is not null as was_handed_off_after,
        resolved_conversations.conversation_id is not null as was_resolved,
        coalesce(conversations.was_abandoned, false) as was_abandoned,
        conversations.outcome as conversation_outcome
    from interventions
    left join handoffs_after
        on
            interventions.conversation_id = handoffs_after.conversation_id
            and interventions.rule_name = handoffs_after.rule_name
    left join resolved_conversations
        on interventions.conversation_id = resolved_conversations.conversation_id
    left join conversations
        on interventions.conversation_id = conversations.conversation_id
),

interventions_classified as (
    select
        interventions_followed.*,
        case
            when interventions_followed.was_handed_off_after then 'handed_off'
            when interventions_followed.was_resolved then 'resolved'
            when interventions_followed.was_abandoned then 'abandoned'
            when coalesce(interventions_followed.conversation_outcome, 'in_progress') = 'in_progress'
                then 'in_progress'
            else 'unresolved'
        end as outcome_after
    from interventions_followed
)

{{ select_with_conversation_date('interventions_classified') }}
