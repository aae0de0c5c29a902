{#- One row per conversation: what it adds to the numerator and denominator
    of every metric of metrics_definitions() (the list metrics_daily is built
    from), with its day, hour and attributes, so a period crossed with any
    filters (channel and agent and environment, an experiment variant) is a
    sum over rows: sum(<metric>__numerator) / sum(<metric>__denominator). The
    dashboard, `convo-warehouse` and the read API read it from the snapshot.
    The measures are joined here, each read for the days in scope only (a
    view joined on the day let DuckDB filter fct_conversations alone: it
    read and hashed the other parts whole).
    Replaced day by day (incremental keyed by metric_date): the days of
    the conversations in scope, since a conversation's quality_score
    compares it with its agent's other conversations of the same day
    (int_conversation_quality_scored), so a change to one conversation can
    change the others of its day. The snapshot publishes the days the run
    rewrote. -#}
{{ config(
    unique_key='conversation_id',
    scope_key='metric_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('metric_date' if target.type == 'spark' else none),
) }}

{#- an incremental build's days (on_scope_days); the ref outside the
    condition, so dbt sees the dependency when it parses -#}
{%- set scope_days = ref('scope_days') %}
{#- a funnel progress row's day: a column on Spark, its first event's date on DuckDB -#}
{%- set progressed_day = 'sales_progress.conversation_date' if conversation_days_partitioned()
    else 'cast(sales_progress.first_event_at as ' ~ type_date() ~ ')' %}

with

conversations as (
    select
        fct_conversations.conversation_id,
        fct_conversations.conversation_date,
        fct_conversations.first_event_at,
        fct_conversations.channel,
        fct_conversations.agent_id,
        fct_conversations.device,
        fct_conversations.source,
        fct_conversations.language,
        fct_conversations.environment,
        fct_conversations.initialized,
        fct_conversations.started,
        fct_conversations.engaged,
        fct_conversations.was_completed,
        fct_conversations.was_abandoned,
        fct_conversations.had_handoff,
        fct_conversations.converted,
        fct_conversations.user_turns,
        fct_conversations.fallback_count,
        fct_conversations.duration_seconds,
        fct_conversations.first_response_ms,
        fct_conversations.satisfaction_score,
        fct_conversations.feedback_score,
        fct_conversations.rephrase_count
    from {{ ref('fct_conversations') }} as fct_conversations
    {%- if is_incremental() %}
    where {{ on_scope_days('fct_conversations.conversation_date', scope_days) }}
    {%- endif %}
),

sentiment_per_conversation as (
    select
        int_conversation_sentiment_summarized.conversation_id,
        {{ conversation_date_on_spark('int_conversation_sentiment_summarized') }}
        int_conversation_sentiment_summarized.sentiment_sum,
        int_conversation_sentiment_summarized.scored_messages as sentiment_count,
        int_conversation_sentiment_summarized.sentiment_start,
        int_conversation_sentiment_summarized.sentiment_end
    from {{ ref('int_conversation_sentiment_summarized') }} as int_conversation_sentiment_summarized
    {%- if is_incremental() %}
    -- no day of its own on DuckDB: the scope's conversations instead
    where {{ on_scope_days('int_conversation_sentiment_summarized.conversation_date', scope_days)
        if conversation_days_partitioned()
        else 'int_conversation_sentiment_summarized.conversation_id in (select conversations.conversation_id from conversations)' }}
    {%- endif %}
),

-- The sales funnel's stages reached in order (contract v1.2: every earlier
-- sales stage reached, each not later than the next), for the step rates:
-- a stage is reached in order when it lies within the prefix of stages a
-- conversation reached in order (int_conversation_funnels_progressed, one
-- row per conversation in the funnel, rather than every stage row of
-- fct_conversation_stages).
sales_stage_orders as (
    select
        max(case when int_funnel_stages_ordered.stage = 'responded' then int_funnel_stages_ordered.stage_order end)
            as responded_stage_order,
        max(case when int_funnel_stages_ordered.stage = 'qualified' then int_funnel_stages_ordered.stage_order end)
            as qualified_stage_order,
        max(case when int_funnel_stages_ordered.stage = 'booked' then int_funnel_stages_ordered.stage_order end)
            as booked_stage_order,
        max(case when int_funnel_stages_ordered.stage = 'attended' then int_funnel_stages_ordered.stage_order end)
            as attended_stage_order,
        max(case when int_funnel_stages_ordered.stage = 'converted' then int_funnel_stages_ordered.stage_order end)
            as converted_stage_order
    from {{ ref('int_funnel_stages_ordered') }} as int_funnel_stages_ordered
    where int_funnel_stages_ordered.funnel_name = 'sales'
),

sales_stages_in_order as (
    select
        sales_progress.conversation_id,
        -- the conversation's day (fct_conversations': its first event's), a column on Spark only
        {{ progressed_day }} as conversation_date,
        coalesce(
            sales_progress.last_in_order_stage_order >= sales_stage_orders.responded_stage_order, false
        ) as sales_responded_in_order,
        coalesce(
            sales_progress.last_in_order_stage_order >= sales_stage_orders.qualified_stage_order, false
        ) as sales_qualified_in_order,
        coalesce(
            sales_progress.last_in_order_stage_order >= sales_stage_orders.booked_stage_order, false
        ) as sales_booked_in_order,
        coalesce(
            sales_progress.last_in_order_stage_order >= sales_stage_orders.attended_stage_order, false
        ) as sales_attended_in_order,
        coalesce(
            sales_progress.last_in_order_stage_order >= sales_stage_orders.converted_stage_order, false
        ) as sales_converted_in_order
    from {{ ref('int_conversation_funnels_progressed') }} as sales_progress
    cross join sales_stage_orders
    where
        sales_progress.funnel_name = 'sales'
    {%- if is_incremental() %}
        and {{ on_scope_days(progressed_day, scope_days) }}
    {%- endif %}
),

-- rephrases by sentence embeddings and the frustration flag
-- (fct_conversation_rephrases: conversations with a user message)
rephrases as (
    select
        fct_conversation_rephrases.conversation_id,
        fct_conversation_rephrases.conversation_date,
        fct_conversation_rephrases.semantic_rephrase_count,
        fct_conversation_rephrases.is_frustrated
    from {{ ref('fct_conversation_rephrases') }} as fct_conversation_rephrases
    {%- if is_incremental() %}
    where {{ on_scope_days('fct_conversation_rephrases.conversation_date', scope_days) }}
    {%- endif %}
),

-- what the agent's model calls cost, over the conversation's models
model_costs as (
    select
        fct_conversation_models.conversation_id,
        fct_conversation_models.conversation_date,
        sum(fct_conversation_models.unpriced_agent_messages) as unpriced_agent_messages,
        {{ exact_sum('fct_conversation_models.cost_usd') }} as cost_usd
    from {{ ref('fct_conversation_models') }} as fct_conversation_models
    {%- if is_incremental() %}
    where {{ on_scope_days('fct_conversation_models.conversation_date', scope_days) }}
    {%- endif %}
    group by
        fct_conversation_models.conversation_id,
        fct_conversation_models.conversation_date
),

quality as (
    select
        int_conversation_quality_scored.conversation_id,
        int_conversation_quality_scored.conversation_date,
        int_conversation_quality_scored.quality_score
    from {{ ref('int_conversation_quality_scored') }} as int_conversation_quality_scored
    {%- if is_incremental() %}
    where {{ on_scope_days('int_conversation_quality_scored.conversation_date', scope_days) }}
    {%- endif %}
),

conversation_measures as (
    select
        conversations.conversation_id,
        conversations.conversation_date as metric_date,
        {{ dbt.date_trunc('hour', 'conversations.first_event_at') }} as metric_hour,
        conversations.initialized,
        conversations.started,
        conversations.engaged,
        conversations.was_completed,
        conversations.was_abandoned,
        conversations.had_handoff,
        conversations.converted,
        conversations.user_turns,
        conversations.fallback_count,
        conversations.duration_seconds,
        conversations.first_response_ms,
        conversations.satisfaction_score,
        conversations.feedback_score,
        conversations.rephrase_count,
        coalesce(sentiment_per_conversation.sentiment_sum, 0) as sentiment_sum,
        coalesce(sentiment_per_conversation.sentiment_count, 0) as sentiment_count,
        sentiment_per_conversation.sentiment_start,
        sentiment_per_conversation.sentiment_end,
        quality.quality_score,
        conversations.channel,
        conversations.agent_id,
        conversations.device,
        conversations.source,
        conversations.language,
        conversations.environment,
        coalesce(sales_stages_in_order.sales_responded_in_order, false) as sales_responded_in_order,
        coalesce(sales_stages_in_order.sales_qualified_in_order, false) as sales_qualified_in_order,
        coalesce(sales_stages_in_order.sales_booked_in_order, false) as sales_booked_in_order,
        coalesce(sales_stages_in_order.sales_attended_in_order, false) as sales_attended_in_order,
        coalesce(sales_stages_in_order.sales_converted_in_order, false) as sales_converted_in_order,
        rephrases.semantic_rephrase_count,
        coalesce(rephrases.is_frustrated, false) as is_frustrated,
        -- known when every agent message has a price (none: the conversation cost nothing)
        case
            when coalesce(model_costs.unpriced_agent_messages, 0) = 0 then coalesce(model_costs.cost_usd, 0)
        end as conversation_cost_usd,
        coalesce(model_costs.unpriced_agent_messages, 0) > 0 as has_unpriced_model_calls
    from conversations
    left join sentiment_per_conversation
        on {{ same_conversation('conversations', 'sentiment_per_conversation', 'conversations.conversation_date') }}
    left join quality
        on
            conversations.conversation_id = quality.conversation_id
            and conversations.conversation_date = quality.conversation_date
    left join sales_stages_in_order
        on
            conversations.conversation_id = sales_stages_in_order.conversation_id
            and conversations.conversation_date = sales_stages_in_order.conversation_date
    left join rephrases
        on
            conversations.conversation_id = rephrases.conversation_id
            and conversations.conversation_date = rephrases.conversation_date
    left join model_costs
        on
            conversations.conversation_id = model_costs.conversation_id
            and conversations.conversation_date = model_costs.conversation_date
),

conversation_contributions as (
    select
        conversation_measures.conversation_id,
        conversation_measures.metric_date,
        conversation_measures.metric_hour,
        coalesce(conversation_measures.channel, 'unknown') as channel,
        coalesce(conversation_measures.agent_id, 'unknown') as agent_id,
        coalesce(conversation_measures.device, 'unknown') as device,
        coalesce(conversation_measures.source, 'unknown') as source,  -- noqa: RF04
        coalesce(conversation_measures.language, 'unknown') as language,  -- noqa: RF04
        coalesce(conversation_measures.environment, 'unknown') as environment,
        {{ is_development_traffic('conversation_measures.environment') }} as is_development,
        {{ metrics_contribution_columns() }}
    from conversation_measures
)

select * from conversation_contributions
