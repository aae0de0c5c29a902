{#- One row per UTC day of the conversations' first event x metric x
    segment (metrics_long_format() over metrics_definitions()).
    incremental by metric_date: a run recomputes every day holding a
    conversation in scope (new events, or the clock carrying it across the
    abandonment window) and deletes a day left with no conversation. -#}
{{ config(
    unique_key=['metric_date', 'metric_name', 'segment_type', 'segment_value'],
    scope_key='metric_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('metric_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}
{#- what each conversation adds to every metric, by column name -#}
{%- set contributions = metrics_contributions() | map(attribute=0) | list %}

with

-- each conversation's contributions (summed, they give every metric), for the days in scope;
-- not materialized: both segment parts read it, and a materialized copy of a full build holds every
-- conversation's contributions in memory
conversations as {{ cte_not_materialized() }} (
    select
        metrics_by_conversation.metric_date,
        metrics_by_conversation.conversation_id,
        metrics_by_conversation.channel,
        metrics_by_conversation.agent_id,
        metrics_by_conversation.device,
        metrics_by_conversation.source,
        metrics_by_conversation.language,
        metrics_by_conversation.environment,
        metrics_by_conversation.{{ contributions | join(',\n        metrics_by_conversation.') }}
    from {{ ref('metrics_by_conversation') }} as metrics_by_conversation
    {%- if is_incremental() %}
    where {{ on_scope_days('metrics_by_conversation.metric_date', scope_days) }}
    {%- endif %}
),

{{ metrics_segmented('conversations') }}

{{ metrics_long_format('conversations_segmented', ['metric_date']) }}

final as (
    select
        metrics_long.metric_date,
        metrics_long.metric_name,
        metrics_long.segment_type,
        metrics_long.segment_value,
        metrics_long.numerator,
        metrics_long.denominator,
        metrics_long.value
    from metrics_long
)

select * from final
