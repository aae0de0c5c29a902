{#- A scalar subquery over staged events (`events`, columns event_type,
    is_known_type, load_id) that changes when already-loaded history is
    re-read differently: the number of staged events, of known ones, of each
    event type the metrics read (an alias added to the seed re-maps old
    events), and the vars the per-conversation rules and the quality score
    apply to every conversation. With `loaded_through` (a SQL value), only
    the events of loads up to it count. The events are counted per type
    first and the counts then picked out (one pass of a small group-by, ~5x
    faster than a conditional count per type over every event). The
    incremental models store it and rebuild every key when it no longer
    matches. -#}
{% macro metrics_history_fingerprint(events, loaded_through=none) %}
    {%- set counted_types = [
        'interaction_initialized', 'conversation_started', 'user_message', 'agent_message',
        'fallback_triggered', 'handoff_requested', 'feedback_received', 'conversion',
        'conversation_completed', 'conversation_abandoned', 'experiment_exposure',
    ] -%}
    {%- set parts = [
        "cast(coalesce(sum(history_counts.events_counted), 0) as " ~ dbt.type_string() ~ ")",
        "cast(coalesce(sum(case when history_counts.is_known_type then history_counts.events_counted end), 0) as "
        ~ dbt.type_string() ~ ")",
    ] -%}
    {%- for event_type in counted_types -%}
        {%- do parts.append(
            "cast(coalesce(sum(case when history_counts.is_known_type and history_counts.event_type = '"
            ~ event_type ~ "' then history_counts.events_counted end), 0) as " ~ dbt.type_string() ~ ")"
        ) -%}
    {%- endfor -%}
    {%- do parts.append(string_literal('abandon_after_minutes=' ~ var('abandon_after_minutes'))) -%}
    {%- do parts.append(string_literal('rephrase_jaccard_threshold=' ~ var('rephrase_jaccard_threshold'))) -%}
    {#- quality_score (fct_conversation_quality) reads the sentiment trend -#}
    {%- do parts.append(string_literal('sentiment_min_user_messages=' ~ var('sentiment_min_user_messages'))) -%}
    {%- do parts.append(string_literal('sentiment_trend_band=' ~ var('sentiment_trend_band'))) -%}
    {%- set pieces = [] -%}
    {%- for part in parts -%}
        {%- if not loop.first -%}
            {%- do pieces.append("'|'") -%}
        {%- endif -%}
        {%- do pieces.append(part) -%}
    {%- endfor -%}
    (
        select {{ dbt.concat(pieces) }}
        from (
            select
                history_events.event_type,
                history_events.is_known_type,
                count(*) as events_counted
            from {{ events }} as history_events
            {%- if loaded_through is not none %}
            where history_events.load_id <= {{ loaded_through }}
            {%- endif %}
            group by history_events.event_type, history_events.is_known_type
        ) as history_counts
    )
{%- endmacro %}
