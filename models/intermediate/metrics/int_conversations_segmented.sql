{#- A view: it is only read filtered by day (the incremental metrics models
    push their day filter into it), so storing it would cost a full write of
    conversations x segments on every run for nothing (dbt_project.yml). The
    measures are int_conversation_measures' (one row per conversation); this
    model only says which segments each conversation belongs to.
    Every read of the measures carries metric_date to the output, so a
    reader's day filter reaches each of them: a segment list built from an
    unfiltered read and joined back would compute the measures (their joins
    included) for the whole history on every run. -#}

{%- set attribute_segments = ['channel', 'agent_id', 'device', 'source', 'language'] -%}

with

measures as (
    select
        int_conversation_measures.conversation_id,
        int_conversation_measures.metric_date,
        int_conversation_measures.metric_hour,
        int_conversation_measures.initialized,
        int_conversation_measures.started,
        int_conversation_measures.engaged,
        int_conversation_measures.was_completed,
        int_conversation_measures.was_abandoned,
        int_conversation_measures.had_handoff,
        int_conversation_measures.converted,
        int_conversation_measures.user_turns,
        int_conversation_measures.fallback_count,
        int_conversation_measures.duration_seconds,
        int_conversation_measures.first_response_ms,
        int_conversation_measures.satisfaction_score,
        int_conversation_measures.feedback_score,
        int_conversation_measures.rephrase_count,
        int_conversation_measures.sentiment_sum,
        int_conversation_measures.sentiment_count,
        int_conversation_measures.sentiment_start,
        int_conversation_measures.sentiment_end,
        int_conversation_measures.quality_score,
        int_conversation_measures.channel,
        int_conversation_measures.agent_id,
        int_conversation_measures.device,
        int_conversation_measures.source,
        int_conversation_measures.language,
        int_conversation_measures.environment,
        int_conversation_measures.sales_responded_in_order,
        int_conversation_measures.sales_qualified_in_order,
        int_conversation_measures.sales_booked_in_order,
        int_conversation_measures.sales_attended_in_order,
        int_conversation_measures.sales_converted_in_order
    from {{ ref('int_conversation_measures') }} as int_conversation_measures
),

exposures as (
    select
        int_ab_test_exposures_checked.test_name,
        int_ab_test_exposures_checked.conversation_id,
        int_ab_test_exposures_checked.variant
    from {{ ref('int_ab_test_exposures_checked') }} as int_ab_test_exposures_checked
    -- variant_count > 1: the conversation saw several variants (contaminated)
    where coalesce(int_ab_test_exposures_checked.variant_count, 0) <= 1
),

attribute_segment_types as (
    select 'all' as segment_type
    {% for attribute in attribute_segments %}
        union all
        select '{{ attribute }}' as segment_type
    {% endfor %}
),

-- every conversation in `all` and in the value of each attribute
attribute_segments as (
    select
        measures.conversation_id,
        measures.metric_date,
        measures.metric_hour,
        attribute_segment_types.segment_type,
        case attribute_segment_types.segment_type
            when 'all' then 'all'
            {% for attribute in attribute_segments %}
                when '{{ attribute }}'
                    then coalesce(cast(measures.{{ attribute }} as {{ dbt.type_string() }}), 'unknown')
            {% endfor %}
        end as segment_value,
        measures.initialized,
        measures.started,
        measures.engaged,
        measures.was_completed,
        measures.was_abandoned,
        measures.had_handoff,
        measures.converted,
        measures.user_turns,
        measures.fallback_count,
        measures.duration_seconds,
        measures.first_response_ms,
        measures.satisfaction_score,
        measures.feedback_score,
        measures.rephrase_count,
        measures.sentiment_sum,
        measures.sentiment_count,
        measures.sentiment_start,
        measures.sentiment_end,
        measures.quality_score,
        measures.channel,
        measures.agent_id,
        measures.device,
        measures.source,
        measures.language,
        measures.environment,
        measures.sales_responded_in_order,
        measures.sales_qualified_in_order,
        measures.sales_booked_in_order,
        measures.sales_attended_in_order,
        measures.sales_converted_in_order
    from measures
    cross join attribute_segment_types
),

-- and in the variant of each A/B test it was exposed to
experiment_segments as (
    select
        measures.conversation_id,
        measures.metric_date,
        measures.metric_hour,
        {{ dbt.concat(["'experiment:'", "coalesce(exposures.test_name, 'unknown')"]) }} as segment_type,
        coalesce(cast(exposures.variant as {{ dbt.type_string() }}), 'unknown') as segment_value,
        measures.initialized,
        measures.started,
        measures.engaged,
        measures.was_completed,
        measures.was_abandoned,
        measures.had_handoff,
        measures.converted,
        measures.user_turns,
        measures.fallback_count,
        measures.duration_seconds,
        measures.first_response_ms,
        measures.satisfaction_score,
        measures.feedback_score,
        measures.rephrase_count,
        measures.sentiment_sum,
        measures.sentiment_count,
        measures.sentiment_start,
        measures.sentiment_end,
        measures.quality_score,
        measures.channel,
        measures.agent_id,
        measures.device,
        measures.source,
        measures.language,
        measures.environment,
        measures.sales_responded_in_order,
        measures.sales_qualified_in_order,
        measures.sales_booked_in_order,
        measures.sales_attended_in_order,
        measures.sales_converted_in_order
    from exposures
    inner join measures
        on exposures.conversation_id = measures.conversation_id
),

conversations_segmented as (
    select * from attribute_segments
    union all
    select * from experiment_segments
)

select * from conversations_segmented
