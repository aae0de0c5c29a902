-- One row per judged conversation: the newest LLM quality judgment wins.

with

conversation_judgments as (
    select
        conversation_id,
        transcript_hash,
        resolution,
        user_frustration,
        reason,
        model,
        prompt_version,
        judged_at
    from {{ source('classification', 'conversation_judgments') }}
    where conversation_id is not null
),

judgments_ranked as (
    select
        conversation_judgments.*,
        row_number() over (
            partition by conversation_judgments.conversation_id
            order by
                conversation_judgments.judged_at desc nulls last,
                conversation_judgments.model asc
        ) as recency_rank
    from conversation_judgments
),

judgments_deduplicated as (
    select
        cast(judgments_ranked.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(judgments_ranked.transcript_hash as {{ dbt.type_string() }}) as transcript_hash,
        cast(lower(judgments_ranked.resolution) as {{ dbt.type_string() }}) as resolution,
        cast(lower(judgments_ranked.user_frustration) as {{ dbt.type_string() }}) as user_frustration,
        cast(judgments_ranked.reason as {{ dbt.type_string() }}) as reason,
        cast(judgments_ranked.model as {{ dbt.type_string() }}) as model,  -- noqa: RF04
        cast(judgments_ranked.prompt_version as {{ dbt.type_string() }}) as prompt_version,
        cast(judgments_ranked.judged_at as {{ dbt.type_timestamp() }}) as judged_at
    from judgments_ranked
    where judgments_ranked.recency_rank = 1
)

select * from judgments_deduplicated
