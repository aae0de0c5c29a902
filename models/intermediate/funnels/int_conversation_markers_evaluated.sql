{#- Every marker of funnel_markers() (macros/funnels/funnel_markers.sql or the
    var `funnel_markers`) evaluated for every conversation: one row per
    conversation x marker that holds. The rules are compiled to SQL by
    funnel_marker_rule_sql; see docs/funnels.md for the language.
    Incremental: a run recomputes every row of the conversations with newly
    loaded events (scope_conversations). -#}
{{ config(
    unique_key=['conversation_id', 'marker_name'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set markers = funnel_markers() -%}
{%- set state = {'conditions': [], 'sequences': [], 'properties': []} -%}
{%- set compiled_markers = [] -%}
{%- for marker_name in markers.keys() | sort -%}
    {%- set compiled = funnel_marker_rule_sql(markers[marker_name]['rule'], state, marker_name) -%}
    {%- do compiled_markers.append({'name': marker_name, 'reached': compiled.reached, 'at': compiled.at}) -%}
{%- endfor -%}

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (
    select conversation_id from {{ ref('scope_conversations') }}
),

events as (
    select
        conversation_id,
        event_type,
        event_at,
        content,
        {#- the property columns the property conditions read back (funnel_marker_property_sql) -#}
        {%- for name in state.properties | unique | sort %}
        {{ name }},
        {%- endfor %}
        properties
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        is_known_type
        -- read by every condition and sequence step below: Spark computes it once
        and {{ evaluated_once() }}
),

conversations as (
    select distinct events.conversation_id
    from events
),

event_conditions_aggregated as (
    select
        events.conversation_id,
        {%- for condition in state.conditions %}
        min(case when {{ condition }} then events.event_at end) as condition_{{ loop.index }}_at,
        {%- endfor %}
        count(*) as events
    from events
    group by events.conversation_id
),
{% for steps in state.sequences %}
{%- set sequence_index = loop.index %}
{%- for step in steps %}

sequence_{{ sequence_index }}_step_{{ loop.index }} as (
    select
        events.conversation_id,
        min(events.event_at) as step_at
    from events
    {%- if not loop.first %}
    inner join sequence_{{ sequence_index }}_step_{{ loop.index - 1 }}
        on
            events.conversation_id = sequence_{{ sequence_index }}_step_{{ loop.index - 1 }}.conversation_id
            and events.event_at > sequence_{{ sequence_index }}_step_{{ loop.index - 1 }}.step_at
    {%- endif %}
    where {{ step }}
    group by events.conversation_id
),
{%- endfor %}

sequence_{{ sequence_index }}_completed as (
    select
        conversation_id,
        step_at as completed_at
    from sequence_{{ sequence_index }}_step_{{ steps | length }}
),
{% endfor %}

markers_evaluated as (
    {%- for marker in compiled_markers %}
    select
        conversations.conversation_id,
        cast({{ funnel_sql_literal(marker.name) }} as {{ dbt.type_string() }}) as marker_name,
        {{ marker.reached }} as is_reached,
        cast({{ marker.at }} as {{ dbt.type_timestamp() }}) as reached_at
    from conversations
    left join event_conditions_aggregated
        on conversations.conversation_id = event_conditions_aggregated.conversation_id
    {%- for steps in state.sequences %}
    left join sequence_{{ loop.index }}_completed
        on conversations.conversation_id = sequence_{{ loop.index }}_completed.conversation_id
    {%- endfor %}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- else %}
    -- no markers defined: an empty, typed result
    select
        cast(null as {{ dbt.type_string() }}) as conversation_id,
        cast(null as {{ dbt.type_string() }}) as marker_name,
        false as is_reached,
        cast(null as {{ dbt.type_timestamp() }}) as reached_at
    from conversations
    where false
    {%- endfor %}
),

markers_reached as (
    select
        markers_evaluated.conversation_id,
        markers_evaluated.marker_name,
        markers_evaluated.reached_at
    from markers_evaluated
    where markers_evaluated.is_reached
)

{{ select_with_conversation_date('markers_reached') }}
