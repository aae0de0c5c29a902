-- One row per conversation x funnel stage: the newest classification wins
-- (a re-classification supersedes older rows; on a tie `llm` beats `rules`).

with

stage_classifications as (
    select
        conversation_id,
        funnel_name,
        stage,
        reached,
        confidence,
        classifier,
        model,
        prompt_version,
        transcript_hash,
        classified_at,
        message_event_id
    from {{ source('classification', 'stage_classifications') }}
    where
        conversation_id is not null
        and funnel_name is not null
        and stage is not null
),

classifications_ranked as (
    select
        stage_classifications.*,
        row_number() over (
            partition by
                stage_classifications.conversation_id,
                stage_classifications.funnel_name,
                stage_classifications.stage
            order by
                stage_classifications.classified_at desc nulls last,
                case when stage_classifications.classifier = 'llm' then 0 else 1 end asc,
                stage_classifications.confidence desc nulls last,
                stage_classifications.transcript_hash asc
        ) as recency_rank
    from stage_classifications
),

classifications_deduplicated as (
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
    from classifications_ranked
    where recency_rank = 1
)

select * from classifications_deduplicated
