-- One row per judged conversation, as the judge wrote it. The judge
-- replaces a conversation's row when it judges it again, so the source holds
-- one row per conversation_id (its unique test checks it) and nothing is
-- deduplicated here: a window over the whole table would sit between a
-- run's scope filter and the scan.

with

conversation_judgments as (
    select
        cast(conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(transcript_hash as {{ dbt.type_string() }}) as transcript_hash,
        cast(lower(resolution) as {{ dbt.type_string() }}) as resolution,
        cast(lower(user_frustration) as {{ dbt.type_string() }}) as user_frustration,
        cast(reason as {{ dbt.type_string() }}) as reason,
        cast(model as {{ dbt.type_string() }}) as model,  -- noqa: RF04
        cast(prompt_version as {{ dbt.type_string() }}) as prompt_version,
        cast(judged_at as {{ dbt.type_timestamp() }}) as judged_at
    from {{ source('classification', 'conversation_judgments') }}
    where conversation_id is not null
)

select * from conversation_judgments
