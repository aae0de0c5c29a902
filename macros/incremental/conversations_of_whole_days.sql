{#- The conversations scope_conversation_lifecycle recomputes, from the CTE
    `conversations` of those with new events (docs/spark.md#incremental-runs).
    DuckDB replaces rows by key: those conversations. Spark replaces
    partitions whole, by conversation_date: those conversations, and every
    conversation of a day they have an event on (so of the day a late event
    moves one of them away from, and of the day it moves to). Only in an
    incremental run: a full build reads every conversation. -#}
{% macro conversations_of_whole_days(conversations) -%}
    {{ return(adapter.dispatch('conversations_of_whole_days', 'convo_warehouse')(conversations)) }}
{%- endmacro %}

{% macro default__conversations_of_whole_days(conversations) -%}
    select {{ conversations }}.conversation_id from {{ conversations }}
{%- endmacro %}

{% macro spark__conversations_of_whole_days(conversations) -%}
    select {{ conversations }}.conversation_id from {{ conversations }}
    {%- if is_incremental() %}
    union
    select kept.conversation_id
    from {{ this }} as kept
    where kept.conversation_date in (
        select distinct cast(day_events.event_at as {{ type_date() }})
        from {{ ref('stg_events') }} as day_events
        where day_events.conversation_id in (select {{ conversations }}.conversation_id from {{ conversations }})
    )
    {%- endif %}
{%- endmacro %}

{#- scope_conversations from the CTE `conversations` of those with a reason
    (one boolean column per reason) and the CTE `lifecycle`
    (scope_conversation_lifecycle). DuckDB: those conversations. Spark, where
    conversation-keyed models are partitioned by conversation_date: also
    every conversation whose conversation_date is a day one of them has an
    event on, every reason false; so a run rewrites each such day's
    partition with all its conversations' rows. -#}
{% macro scope_conversations_of_whole_days(conversations, lifecycle) -%}
    {{ return(adapter.dispatch('scope_conversations_of_whole_days', 'convo_warehouse')(conversations, lifecycle)) }}
{%- endmacro %}

{% macro default__scope_conversations_of_whole_days(conversations, lifecycle) -%}
    select
        {{ conversations }}.conversation_id,
        {{ conversations }}.has_new_events,
        {{ conversations }}.crossed_abandonment_window,
        {{ conversations }}.crossed_conversion_window,
        {{ conversations }}.has_new_classifier_output
    from {{ conversations }}
{%- endmacro %}

{% macro spark__scope_conversations_of_whole_days(conversations, lifecycle) -%}
    select
        {{ conversations }}.conversation_id,
        {{ conversations }}.has_new_events,
        {{ conversations }}.crossed_abandonment_window,
        {{ conversations }}.crossed_conversion_window,
        {{ conversations }}.has_new_classifier_output
    from {{ conversations }}
    union all
    select
        {{ lifecycle }}.conversation_id,
        false,
        false,
        false,
        false
    from {{ lifecycle }}
    where
        {{ lifecycle }}.conversation_id not in (select {{ conversations }}.conversation_id from {{ conversations }})
        and {{ lifecycle }}.conversation_date in (
            select distinct cast(day_events.event_at as {{ type_date() }})
            from {{ ref('stg_events') }} as day_events
            where day_events.conversation_id in (select {{ conversations }}.conversation_id from {{ conversations }})
        )
{%- endmacro %}
