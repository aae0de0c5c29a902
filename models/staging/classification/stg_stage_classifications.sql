-- One row per conversation x funnel stage, as the classifier wrote it. The
-- classifier replaces a conversation's rows when it classifies it again, so
-- the source holds one row per key (its unique_combination test checks it)
-- and nothing is deduplicated here: a window over the whole table would sit
-- between a run's scope filter and the scan, and every run would rank every
-- classification ever made.

with

stage_classifications as (
    select
        cast(conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        coalesce(reached, false) as is_reached,
        cast(confidence as {{ type_double() }}) as confidence,
        cast(lower(classifier) as {{ dbt.type_string() }}) as classifier,
        cast(model as {{ dbt.type_string() }}) as model,  -- noqa: RF04
        cast(prompt_version as {{ dbt.type_string() }}) as prompt_version,
        cast(transcript_hash as {{ dbt.type_string() }}) as transcript_hash,
        cast(classified_at as {{ dbt.type_timestamp() }}) as classified_at,
        cast(message_event_id as {{ dbt.type_string() }}) as message_event_id
    from {{ source('classification', 'stage_classifications') }}
    where
        conversation_id is not null
        and funnel_name is not null
        and stage is not null
)

select * from stage_classifications
