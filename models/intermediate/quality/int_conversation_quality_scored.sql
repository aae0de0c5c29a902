{#- One row per started conversation: the four quality components, each
    0..1 or null when it cannot be measured, and quality_score, their mean
    weighted by seeds/quality_weights.csv over the non-null components.
    Formulas (docs/quality.md):
      resolution       1 converted; 0.5 escalated (handoff); 1 completed or
                       classified resolved; else 0
      efficiency       mean of min(1, agent's median user turns / user turns)
                       and min(1, agent's median seconds to resolution /
                       seconds to resolution); null without user turns
      sentiment        with a direction: 0.5 * (sentiment_end + 1) / 2
                       + 0.5 * (improving 1, stable 0.5, worsening 0);
                       else (avg_sentiment + 1) / 2; null without scores
      goal_completion  1 converted, completed or classified resolved (the
                       support funnel's last stage); else the highest support
                       stage reached / the funnel's last stage_order
    Agent medians are over the same agent's (null agent_id: 'unknown')
    started conversations with user turns of the same conversation_date: a
    day's scores then depend on that day's conversations only, so the
    incremental metrics (which recompute the days new events touch) stay
    exact. -#}
{{ config(
    unique_key='conversation_id',
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations as (
    select
        conversation_id,
        coalesce(agent_id, 'unknown') as agent_key,
        conversation_date,
        started_at,
        completed_at,
        was_completed,
        had_handoff,
        converted,
        user_turns,
        duration_seconds
    from {{ ref('fct_conversations') }}
    where
        started
    {%- if is_incremental() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

sentiment as (
    select
        conversation_id,
        avg_sentiment,
        sentiment_end,
        sentiment_direction
    from {{ ref('int_conversation_sentiment_summarized') }}
    where conversation_id in (select conversations.conversation_id from conversations)
),

support_stages as (
    select
        stage,
        stage_order
    from {{ ref('int_funnel_stages_ordered') }}
    where funnel_name = 'support'
),

classified_stages as (
    select
        conversation_id,
        stage
    from {{ ref('stg_stage_classifications') }}
    where
        funnel_name = 'support'
        and is_reached
        and conversation_id in (select conversations.conversation_id from conversations)
),

weights as (
    select
        component,
        weight
    from {{ ref('quality_weights') }}
),

support_last_stage as (
    select
        max(support_stages.stage_order) as last_stage_order,
        min(support_stages.stage_order) as first_stage_order
    from support_stages
),

classified_progress as (
    select
        classified_stages.conversation_id,
        max(support_stages.stage_order) as highest_stage_order
    from classified_stages
    inner join support_stages
        on classified_stages.stage = support_stages.stage
    group by classified_stages.conversation_id
),

conversations_timed as (
    select
        conversations.*,
        case
            when conversations.completed_at is not null
                then {{ milliseconds_between(
                    'conversations.started_at', 'conversations.completed_at'
                ) }} / 1000.0
            else conversations.duration_seconds
        end as resolution_seconds
    from conversations
),

agent_medians as (
    select
        conversations_timed.agent_key,
        conversations_timed.conversation_date,
        {{ metrics_percentile_cont('conversations_timed.user_turns', 0.5) }} as median_user_turns,
        {{ metrics_percentile_cont('conversations_timed.resolution_seconds', 0.5) }} as median_resolution_seconds
    from conversations_timed
    where conversations_timed.user_turns > 0
    group by
        conversations_timed.agent_key,
        conversations_timed.conversation_date
),

parts_measured as (
    select
        conversations_timed.conversation_id,
        conversations_timed.conversation_date,
        conversations_timed.converted,
        conversations_timed.had_handoff,
        conversations_timed.was_completed,
        conversations_timed.user_turns,
        conversations_timed.resolution_seconds,
        agent_medians.median_user_turns,
        agent_medians.median_resolution_seconds,
        sentiment.sentiment_end,
        sentiment.avg_sentiment,
        classified_progress.highest_stage_order = support_last_stage.last_stage_order as is_classified_resolved,
        case
            when conversations_timed.user_turns > 0
                then least(1.0, agent_medians.median_user_turns / conversations_timed.user_turns)
        end as turns_part,
        case
            when conversations_timed.resolution_seconds <= 0 then 1.0
            else least(1.0, agent_medians.median_resolution_seconds / conversations_timed.resolution_seconds)
        end as time_part,
        case sentiment.sentiment_direction
            when 'improving' then 1.0
            when 'stable' then 0.5
            when 'worsening' then 0.0
        end as trend_value,
        cast(
            coalesce(classified_progress.highest_stage_order, support_last_stage.first_stage_order)
            as {{ type_double() }}
        ) / support_last_stage.last_stage_order as funnel_share
    from conversations_timed
    cross join support_last_stage
    left join agent_medians
        on
            conversations_timed.agent_key = agent_medians.agent_key
            and conversations_timed.conversation_date = agent_medians.conversation_date
    left join sentiment
        on conversations_timed.conversation_id = sentiment.conversation_id
    left join classified_progress
        on conversations_timed.conversation_id = classified_progress.conversation_id
),

components_scored as (
    select
        parts_measured.conversation_id,
        parts_measured.conversation_date,
        parts_measured.user_turns,
        parts_measured.resolution_seconds,
        parts_measured.median_user_turns,
        parts_measured.median_resolution_seconds,
        parts_measured.is_classified_resolved,
        case
            when parts_measured.converted then 1.0
            when parts_measured.had_handoff then 0.5
            when parts_measured.was_completed then 1.0
            when parts_measured.is_classified_resolved then 1.0
            else 0.0
        end as resolution,
        case
            when parts_measured.user_turns > 0 then 0.5 * parts_measured.turns_part + 0.5 * parts_measured.time_part
        end as efficiency,
        case
            when parts_measured.trend_value is not null
                then 0.5 * (parts_measured.sentiment_end + 1) / 2 + 0.5 * parts_measured.trend_value
            when parts_measured.avg_sentiment is not null then (parts_measured.avg_sentiment + 1) / 2
        end as sentiment,
        case
            when parts_measured.converted or parts_measured.was_completed or parts_measured.is_classified_resolved
                then 1.0
            else parts_measured.funnel_share
        end as goal_completion
    from parts_measured
),

component_weights as (
    select
        max(case when weights.component = 'resolution' then weights.weight end) as resolution_weight,
        max(case when weights.component = 'efficiency' then weights.weight end) as efficiency_weight,
        max(case when weights.component = 'sentiment' then weights.weight end) as sentiment_weight,
        max(case when weights.component = 'goal_completion' then weights.weight end) as goal_completion_weight
    from weights
),

quality_scored as (
    select
        components_scored.*,
        (
            coalesce(component_weights.resolution_weight * components_scored.resolution, 0)
            + coalesce(component_weights.efficiency_weight * components_scored.efficiency, 0)
            + coalesce(component_weights.sentiment_weight * components_scored.sentiment, 0)
            + coalesce(component_weights.goal_completion_weight * components_scored.goal_completion, 0)
        ) / nullif(
            case when components_scored.resolution is null then 0 else component_weights.resolution_weight end
            + case when components_scored.efficiency is null then 0 else component_weights.efficiency_weight end
            + case when components_scored.sentiment is null then 0 else component_weights.sentiment_weight end
            + case
                when components_scored.goal_completion is null then 0 else component_weights.goal_completion_weight
            end,
            0
        ) as quality_score
    from components_scored
    cross join component_weights
)

select * from quality_scored
