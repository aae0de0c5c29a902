{% macro select_with_conversation_date(relation) -%}
    {{ return(adapter.dispatch('select_with_conversation_date', 'convo_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__select_with_conversation_date(relation) -%}
    select * from {{ relation }}
{%- endmacro %}

{% macro spark__select_with_conversation_date(relation) -%}
    select
        {{ relation }}.*,
        conversation_days.conversation_date
    from {{ relation }}
    inner join {{ ref('scope_conversation_lifecycle') }} as conversation_days
        on {{ relation }}.conversation_id = conversation_days.conversation_id
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
