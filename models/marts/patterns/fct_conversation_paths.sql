{#- Publishes int_conversation_paths_assembled under the enforced contract;
    the scope and the rule of success live there. Replaced conversation by
    conversation like it. -#}
with

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
    where {{ touched('conversation_id') }}
)

select * from paths
