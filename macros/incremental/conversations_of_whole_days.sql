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

{% macro scope_conversations_of_whole_days(conversations, lifecycle) -%}
    {{ return(adapter.dispatch('scope_conversations_of_whole_days', 'convo_warehouse')(conversations, lifecycle)) }}
{%- endmacro %}

{% macro default__scope_conversations_of_whole_days(conversations, lifecycle) -%}
    select * from {{ conversations }}
{%- endmacro %}

{% macro spark__scope_conversations_of_whole_days(conversations, lifecycle) -%}
    select * from {{ conversations }}
    union all
    select {{ lifecycle }}.conversation_id, false, false, false, false
    from {{ lifecycle }}
    where
        {{ lifecycle }}.conversation_id not in (select {{ conversations }}.conversation_id from {{ conversations }})
        and {{ lifecycle }}.conversation_date in (
            select distinct cast(day_events.event_at as {{ type_date() }})
            from {{ ref('stg_events') }} as day_events
            where day_events.conversation_id in (select {{ conversations }}.conversation_id from {{ conversations }})
        )
{%- endmacro %}
