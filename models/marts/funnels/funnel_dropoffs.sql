{#- Replaced conversation by conversation: a conversation's rows change with
    its stages (events, the classifier), its outcome (the abandonment clock)
    and window_open (the conversion window). -#}
{{ config(
    unique_key=['conversation_id', 'funnel_name'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

funnel_progress as (
    select
        conversation_id,
        funnel_name,
        last_stage,
        last_stage_order,
        last_stage_reached_at,
        next_stage,
        next_stage_order,
        has_reached_last_stage,
        is_window_open
    from {{ ref('int_conversation_funnels_progressed') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        {%- if conversation_days_partitioned() %}
        and {{ on_scope_days('conversation_date', scope_days) }}
        {%- endif %}
    {%- endif %}
),

conversations as (
    select
        conversation_id,
        conversation_date,
        channel,
        last_user_message,
        outcome
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where
        conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
        -- they all lie on the scope's days: Spark reads only those partitions
        and {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

conversations_stopped as (
    -- reached stage k (the highest reached) but not k+1; conversations that
    -- reached the final stage did not drop, in_progress ones may still move
    select
        cast(funnel_progress.conversation_id as {{ dbt.type_string() }}) as conversation_id,
        cast(funnel_progress.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(funnel_progress.last_stage as {{ dbt.type_string() }}) as last_stage,
        cast(funnel_progress.next_stage as {{ dbt.type_string() }}) as next_stage,
        cast(conversations.last_user_message as {{ dbt.type_string() }}) as last_user_message,
        cast(conversations.outcome as {{ dbt.type_string() }}) as outcome,
        cast(funnel_progress.last_stage_order as {{ dbt.type_int() }}) as last_stage_order,
        cast(funnel_progress.next_stage_order as {{ dbt.type_int() }}) as next_stage_order,
        cast(funnel_progress.last_stage_reached_at as {{ dbt.type_timestamp() }}) as last_stage_reached_at,
        cast(conversations.conversation_date as {{ type_date() }}) as conversation_date,
        cast(coalesce(conversations.channel, 'unknown') as {{ dbt.type_string() }}) as channel,
        funnel_progress.is_window_open as window_open
    from funnel_progress
    inner join conversations
        on funnel_progress.conversation_id = conversations.conversation_id
    where {{ funnel_has_stopped('funnel_progress', 'conversations') }}
)

select * from conversations_stopped
