{#- An aggregate over staged events (alias `events_alias`, columns event_type,
    is_known_type) that changes when already-loaded history is re-read
    differently: the number of staged events, of known ones, of each event
    type the metrics read (an alias added to the seed re-maps old events), and
    the vars the per-conversation rules and the quality score apply to every conversation. The incremental
    metrics store it and recompute every day when it no longer matches. -#}
{% macro metrics_history_fingerprint(events_alias) %}
    {%- set counted_types = [
        'interaction_initialized', 'conversation_started', 'user_message', 'agent_message',
        'fallback_triggered', 'handoff_requested', 'feedback_received', 'conversion',
        'conversation_completed', 'conversation_abandoned', 'experiment_exposure',
    ] -%}
    {%- set parts = [
        "cast(count(*) as " ~ dbt.type_string() ~ ")",
        "cast(count(case when " ~ events_alias ~ ".is_known_type then 1 end) as " ~ dbt.type_string() ~ ")",
    ] -%}
    {%- for event_type in counted_types -%}
        {%- do parts.append(
            "cast(count(case when " ~ events_alias ~ ".is_known_type and " ~ events_alias
            ~ ".event_type = '" ~ event_type ~ "' then 1 end) as " ~ dbt.type_string() ~ ")"
        ) -%}
    {%- endfor -%}
    {%- do parts.append("'abandon_after_minutes=" ~ var('abandon_after_minutes') ~ "'") -%}
    {%- do parts.append("'rephrase_jaccard_threshold=" ~ var('rephrase_jaccard_threshold') ~ "'") -%}
    {#- quality_score (fct_conversation_quality) reads the sentiment trend -#}
    {%- do parts.append("'sentiment_min_user_messages=" ~ var('sentiment_min_user_messages') ~ "'") -%}
    {%- do parts.append("'sentiment_trend_band=" ~ var('sentiment_trend_band') ~ "'") -%}
    {%- set pieces = [] -%}
    {%- for part in parts -%}
        {%- if not loop.first -%}
            {%- do pieces.append("'|'") -%}
        {%- endif -%}
        {%- do pieces.append(part) -%}
    {%- endfor -%}
    {{ dbt.concat(pieces) }}
{%- endmacro %}
