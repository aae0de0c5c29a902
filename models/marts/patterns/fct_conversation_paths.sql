{#- Publishes int_conversation_paths_assembled under the enforced contract;
    the scope and the rule of success live there. Replaced conversation by
    conversation like it. -#}
{{ config(
    unique_key='conversation_id',
) }}

with

conversations_in_scope as (
    select conversation_id from {{ ref('scope_conversations') }}
),

paths as (
    select
        conversation_id,
        conversation_date,
        channel,
        environment,
        outcome,
        started,
        is_successful,
        path,
        path_length,
        first_step,
        outcome_step
    from {{ ref('int_conversation_paths_assembled') }}
    {%- if is_incremental() %}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
)

select * from paths
