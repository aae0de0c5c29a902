{#- the one engine switch: the other macros of this file follow it -#}
{% macro conversation_days_partitioned() -%}
    {{ return(adapter.dispatch('conversation_days_partitioned', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__conversation_days_partitioned() -%}
    {{ return(false) }}
{%- endmacro %}

{% macro spark__conversation_days_partitioned() -%}
    {{ return(true) }}
{%- endmacro %}

{% macro select_with_conversation_date(relation) -%}
    {%- if conversation_days_partitioned() -%}
    {#- outside is_incremental(), so dbt sees the dependency when it parses -#}
    {%- set scope_days = ref('scope_days') %}
    select
        {{ relation }}.*,
        conversation_days.conversation_date
    from {{ relation }}
    inner join {{ ref('scope_conversation_lifecycle') }} as conversation_days
        on {{ relation }}.conversation_id = conversation_days.conversation_id
    {%- if is_incremental() %}
    -- the scope's conversations lie on its days: read only their partitions
    where {{ on_scope_days('conversation_days.conversation_date', scope_days) }}
    {%- endif %}
    {%- else %}
    select * from {{ relation }}
    {%- endif %}
{%- endmacro %}

{% macro same_conversation(left, right, left_day) -%}
    {{ left }}.conversation_id = {{ right }}.conversation_id
    {{- ' and ' ~ left_day ~ ' = ' ~ right ~ '.conversation_date' if conversation_days_partitioned() else '' }}
{%- endmacro %}

{% macro conversation_date_on_spark(relation=none) -%}
    {{ (relation ~ '.' if relation else '') ~ 'conversation_date,' if conversation_days_partitioned() else '' }}
{%- endmacro %}

{% macro partition_column_outside_contract() -%}
    {%- set partition = config.get('partition_by') -%}
    {{ return(partition if partition is string and partition not in model['columns'] else none) }}
{%- endmacro %}

{% macro spark__get_assert_columns_equivalent(sql) -%}
    {%- set partition = partition_column_outside_contract() -%}
    {%- if partition -%}
        {%- set names = get_column_schema_from_query(sql) | map(attribute='name') | reject('equalto', partition) -%}
        {%- set sql = 'select ' ~ names | join(', ') ~ ' from (' ~ sql ~ ') as contracted' -%}
    {%- endif -%}
    {{ return(assert_columns_equivalent(sql)) }}
{%- endmacro %}

{% macro spark__get_select_subquery(sql) -%}
    {%- set partition = partition_column_outside_contract() -%}
    select {{ adapter.dispatch('get_column_names', 'dbt')() }}{{ ', ' ~ partition if partition }}
    from ({{ sql }}) as model_subq
{%- endmacro %}
