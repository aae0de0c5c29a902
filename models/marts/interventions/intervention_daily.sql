{#- One row per intervention rule x day (UTC date of the interventions'
    triggered_at): how many fired and what happened afterwards, counted from
    fct_interventions (each intervention in exactly one outcome_after, so the
    five counts add up to interventions). Rates divide by interventions.
    Replaced a day at a time: every day of the conversations whose
    interventions may have changed. -#}
{{ config(
    unique_key=['rule_name', 'triggered_date'],
    scope_key='triggered_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('triggered_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

interventions as (
    select
        conversation_id,
        rule_name,
        triggered_date,
        outcome_after
    from {{ ref('fct_interventions') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('triggered_date', scope_days) }}
    {%- endif %}
),

interventions_counted as (
    select
        interventions.rule_name,
        interventions.triggered_date,
        count(*) as interventions,
        count(distinct interventions.conversation_id) as conversations,
        count(case when interventions.outcome_after = 'handed_off' then 1 end) as handed_off,
        count(case when interventions.outcome_after = 'resolved' then 1 end) as resolved,
        count(case when interventions.outcome_after = 'abandoned' then 1 end) as abandoned,
        count(case when interventions.outcome_after = 'in_progress' then 1 end) as in_progress,
        count(case when interventions.outcome_after = 'unresolved' then 1 end) as unresolved
    from interventions
    group by
        interventions.rule_name,
        interventions.triggered_date
),

rates as (
    select
        interventions_counted.*,
        interventions_counted.handed_off / cast(interventions_counted.interventions as {{ type_double() }})
            as handed_off_rate,
        interventions_counted.resolved / cast(interventions_counted.interventions as {{ type_double() }})
            as resolved_rate,
        interventions_counted.abandoned / cast(interventions_counted.interventions as {{ type_double() }})
            as abandoned_rate
    from interventions_counted
)

select * from rates
