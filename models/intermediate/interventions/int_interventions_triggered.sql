{#- One row per conversation x intervention rule that fired: the first
    intervention_triggered event of the pair (by time, then event_id; the
    collector fires a rule once per conversation, this keeps that true if a
    file is ever copied twice under other ids). Its time is the time of the
    event that made the rule hold; fired_at is the collector's clock.
    Replaced conversation by conversation (new events). -#}
{{ config(
    unique_key=['conversation_id', 'rule_name'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

interventions as (
    select
        event_id,
        conversation_id,
        event_at,
        properties
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        event_type = 'intervention_triggered'
        and is_known_type
),

interventions_read as (
    select
        interventions.event_id,
        interventions.conversation_id,
        {{ json_text('interventions.properties', 'rule') }} as rule_name,
        interventions.event_at as triggered_at,
        {{ parse_event_timestamp(json_text('interventions.properties', 'fired_at')) }} as fired_at,
        {{ json_text('interventions.properties', 'stage_at_trigger') }} as stage_at_trigger,
        coalesce({{ json_text('interventions.properties', 'classifier') }}, 'rules') as classifier,
        {{ dbt.safe_cast(json_text('interventions.properties', 'user_turns'), dbt.type_int()) }}
            as user_turns_at_trigger
    from interventions
),

interventions_first as (
    select interventions_read.*
    from interventions_read
    where interventions_read.rule_name is not null
    qualify row_number() over (
        partition by interventions_read.conversation_id, interventions_read.rule_name
        order by interventions_read.triggered_at, interventions_read.event_id
    ) = 1
)

{{ select_with_conversation_date('interventions_first') }}
