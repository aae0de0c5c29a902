{#- A view: it is only read filtered by day (the incremental metrics models
    push their day filter into it), so storing it would cost a full write of
    conversations x segments on every run for nothing (dbt_project.yml). The
    measures are int_conversation_measures' (one row per conversation); this
    model only says which segments each conversation belongs to.
    Every read of the measures carries metric_date to the output, so a
    reader's day filter reaches each of them: a segment list built from an
    unfiltered read and joined back would compute the measures (their joins
    included) for the whole history on every run. -#}
{{ config(materialized='view') }}

{#- environment (contract v1.3) lets a BI tool filter development traffic out -#}
{%- set attribute_segments = ['channel', 'agent_id', 'device', 'source', 'language', 'environment'] -%}

with

measures as (
    select
        int_conversation_measures.conversation_id,
        int_conversation_measures.metric_date,
        int_conversation_measures.metric_hour,
        int_conversation_measures.channel,
        int_conversation_measures.agent_id,
        int_conversation_measures.device,
        int_conversation_measures.source,
        int_conversation_measures.language,
        int_conversation_measures.environment,
        {{ metrics_input_columns('int_conversation_measures') }}
    from {{ ref('int_conversation_measures') }} as int_conversation_measures
),

exposures as (
    select
        int_ab_test_exposures_checked.test_name,
        int_ab_test_exposures_checked.conversation_id,
        {{ conversation_date_on_spark('int_ab_test_exposures_checked') }}
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
        measures.channel,
        measures.agent_id,
        measures.device,
        measures.source,
        measures.language,
        measures.environment,
        {{ metrics_input_columns('measures') }}
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
        measures.channel,
        measures.agent_id,
        measures.device,
        measures.source,
        measures.language,
        measures.environment,
        {{ metrics_input_columns('measures') }}
    from exposures
    inner join measures
        on {{ same_conversation('measures', 'exposures', 'measures.metric_date') }}
),

conversations_segmented as (
    select * from attribute_segments
    union all
    select * from experiment_segments
)

select * from conversations_segmented
