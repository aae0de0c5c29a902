{#- The incremental strategy for a model replaced key by key (an event id, a
    conversation, a day): delete+insert on DuckDB; merge elsewhere (Spark with
    Delta, Snowflake, BigQuery, Databricks), which every adapter with keyed
    upserts supports. Models call it in their config(). -#}
{% macro keyed_incremental_strategy() %}
    {{ return(adapter.dispatch('keyed_incremental_strategy', 'convo_warehouse')()) }}
{% endmacro %}

{% macro default__keyed_incremental_strategy() %}
    {{ return('merge') }}
{% endmacro %}

{% macro duckdb__keyed_incremental_strategy() %}
    {{ return('delete+insert') }}
{% endmacro %}

{#- The incremental strategy for a model replaced a whole day at a time (the
    metrics): delete+insert of the day's rows on DuckDB; insert_overwrite of
    the day's partitions elsewhere (Spark, with partition_by the day). -#}
{% macro day_incremental_strategy() %}
    {{ return(adapter.dispatch('day_incremental_strategy', 'convo_warehouse')()) }}
{% endmacro %}

{% macro default__day_incremental_strategy() %}
    {{ return('insert_overwrite') }}
{% endmacro %}

{% macro duckdb__day_incremental_strategy() %}
    {{ return('delete+insert') }}
{% endmacro %}
