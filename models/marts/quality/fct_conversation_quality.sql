{#- One row per started conversation with at least one scored user message
    (contract v1.3): sentiment start/end/trend (a number) and direction (the
    category), the rule-based quality components and quality_score, and
    beside them (never replacing them) the optional LLM judge's rubric labels. Replaced day by day like
    int_conversation_quality_scored (a conversation's efficiency compares it
    with its agent's other conversations of the day). -#}
{{ config(
    unique_key='conversation_id',
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

quality as (
    select
        conversation_id,
        conversation_date,
        resolution,
        efficiency,
        sentiment,
        goal_completion,
        quality_score,
        user_turns,
        resolution_seconds,
        median_user_turns,
        median_resolution_seconds
    from {{ ref('int_conversation_quality_scored') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

sentiment as (
    select
        conversation_id,
        scored_messages,
        avg_sentiment,
        sentiment_start,
        sentiment_end,
        sentiment_trend,
        sentiment_direction
    from {{ ref('int_conversation_sentiment_summarized') }}
    where
        scored_messages > 0
        and conversation_id in (select quality.conversation_id from quality)
),

judgments as (
    select
        conversation_id,
        resolution,
        user_frustration,
        reason,
        model
    from {{ ref('stg_conversation_judgments') }}
    where conversation_id in (select quality.conversation_id from quality)
),

quality_published as (
    select
        cast(quality.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(quality.conversation_date as date) as conversation_date,
        cast(sentiment.scored_messages as {{ dbt.type_bigint() }}) as sentiment_messages,
        cast(sentiment.avg_sentiment as {{ type_double() }}) as avg_sentiment,
        cast(sentiment.sentiment_start as {{ type_double() }}) as sentiment_start,
        cast(sentiment.sentiment_end as {{ type_double() }}) as sentiment_end,
        cast(sentiment.sentiment_trend as {{ type_double() }}) as sentiment_trend,
        cast(sentiment.sentiment_direction as {{ dbt.type_string() }}) as sentiment_direction,
        cast(quality.resolution as {{ type_double() }}) as resolution_component,
        cast(quality.efficiency as {{ type_double() }}) as efficiency_component,
        cast(quality.sentiment as {{ type_double() }}) as sentiment_component,
        cast(quality.goal_completion as {{ type_double() }}) as goal_completion_component,
        cast(quality.quality_score as {{ type_double() }}) as quality_score,
        cast(quality.resolution_seconds as {{ type_double() }}) as resolution_seconds,
        cast(quality.median_user_turns as {{ type_double() }}) as agent_median_user_turns,
        cast(quality.median_resolution_seconds as {{ type_double() }}) as agent_median_resolution_seconds,
        cast(judgments.resolution as {{ dbt.type_string() }}) as judge_resolution,
        cast(judgments.user_frustration as {{ dbt.type_string() }}) as judge_user_frustration,
        cast(judgments.reason as {{ dbt.type_string() }}) as judge_reason,
        cast(judgments.model as {{ dbt.type_string() }}) as judge_model
    from quality
    -- the grain: started conversations with a scored user message
    inner join sentiment
        on quality.conversation_id = sentiment.conversation_id
    left join judgments
        on quality.conversation_id = judgments.conversation_id
)

select * from quality_published
