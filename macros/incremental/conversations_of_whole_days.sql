{% macro conversations_of_whole_days(conversations) -%}
    select {{ conversations }}.conversation_id from {{ conversations }}
    {%- if conversation_days_partitioned() and is_incremental() %}
    union
    select kept.conversation_id
    from {{ this }} as kept
    where kept.conversation_date in ({{ event_days_of(conversations) }})
    {%- endif %}
{%- endmacro %}

{% macro scope_conversations_of_whole_days(conversations, lifecycle) -%}
    select * from {{ conversations }}
    {%- if conversation_days_partitioned() %}
    union all
    select {{ lifecycle }}.conversation_id, false, false, false, false
    from {{ lifecycle }}
    where
        {{ lifecycle }}.conversation_id not in (select {{ conversations }}.conversation_id from {{ conversations }})
        and {{ lifecycle }}.conversation_date in ({{ event_days_of(conversations) }})
    {%- endif %}
{%- endmacro %}

{% macro event_days_of(conversations) -%}
    select distinct cast(day_events.event_at as {{ type_date() }})
    from {{ ref('stg_events') }} as day_events
    where day_events.conversation_id in (select {{ conversations }}.conversation_id from {{ conversations }})
{%- endmacro %}
