{% macro select_with_conversation_date(relation) -%}
    {{ return(adapter.dispatch('select_with_conversation_date', 'convo_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__select_with_conversation_date(relation) -%}
    select * from {{ relation }}
{%- endmacro %}

{% macro spark__select_with_conversation_date(relation) -%}
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
    where conversation_days.conversation_date in {{ dates_listed(scope_days, 'event_date') }}
    {%- endif %}
{%- endmacro %}

{#- The condition joining two per-conversation relations on their
    conversation: `left.conversation_id = right.conversation_id`, and on Spark
    also `left_day = right.conversation_date` (select_with_conversation_date's
    Spark-only column, or the same day under another name). The conversation
    fixes its day, so the rows joined are the same; with the day, a day filter
    on the left side reaches the right side's scan, and Spark reads only those
    days' partitions. -#}
{% macro same_conversation(left, right, left_day) -%}
    {{ return(adapter.dispatch('same_conversation', 'convo_warehouse')(left, right, left_day)) }}
{%- endmacro %}

{% macro default__same_conversation(left, right, left_day) -%}
    {{ left }}.conversation_id = {{ right }}.conversation_id
{%- endmacro %}

{% macro spark__same_conversation(left, right, left_day) -%}
    {{ left }}.conversation_id = {{ right }}.conversation_id and {{ left_day }} = {{ right }}.conversation_date
{%- endmacro %}

{#- Whether the per-conversation models carry their conversation's day and
    are partitioned by it (Spark: select_with_conversation_date). A model
    reading one for the scope's conversations then also filters that day by
    the scope's days, which all of them lie on: the filter changes no row and
    lets Spark read only those days' partitions. -#}
{% macro conversation_days_partitioned() -%}
    {{ return(adapter.dispatch('conversation_days_partitioned', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__conversation_days_partitioned() -%}
    {{ return(false) }}
{%- endmacro %}

{% macro spark__conversation_days_partitioned() -%}
    {{ return(true) }}
{%- endmacro %}

{#- `<relation>.conversation_date,` on Spark (select_with_conversation_date's
    column), nothing elsewhere: for a CTE whose rows same_conversation joins. -#}
{% macro conversation_date_on_spark(relation=none) -%}
    {{ return(adapter.dispatch('conversation_date_on_spark', 'convo_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__conversation_date_on_spark(relation) -%}
{%- endmacro %}

{% macro spark__conversation_date_on_spark(relation) -%}
    {{ relation ~ '.' if relation }}conversation_date,
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
