{#- Post-hook of the incremental metrics models: remove the days that no
    longer have any conversation. An incremental run only replaces the days
    present in the new batch (delete+insert of a day on DuckDB, insert_overwrite
    of its partition on Spark), so a day whose only conversation moved to an
    earlier day (a late event) would otherwise keep its old rows. A no-op on a
    full refresh. Which days vanished is one rule, metrics_vanished_days();
    each engine removes them the way its tables allow. -#}
{% macro metrics_delete_vanished_days() %}
    {{ return(adapter.dispatch('metrics_delete_vanished_days', 'convo_warehouse')()) }}
{% endmacro %}

{#- The metric_date values of {{ this }} without any conversation now, as a
    query (one column, metric_date). -#}
{% macro metrics_vanished_days() %}
    select distinct previous_rows.metric_date
    from {{ this }} as previous_rows
    where not exists (
        select 1
        from {{ ref('int_conversations_summarized') }} as int_conversations_summarized
        where int_conversations_summarized.conversation_date = previous_rows.metric_date
    )
{% endmacro %}

{% macro default__metrics_delete_vanished_days() %}
    {%- if is_incremental() %}
    delete from {{ this }}
    where metric_date in (
        {{ metrics_vanished_days() }}
    )
    {%- endif %}
{%- endmacro %}

{#- Spark's Parquet tables have no DELETE; the models are partitioned by
    metric_date there, so a vanished day is a partition to drop. -#}
{% macro spark__metrics_delete_vanished_days() %}
    {%- set vanished = [] -%}
    {%- if is_incremental() and execute -%}
        {%- set vanished = run_query(metrics_vanished_days()).columns[0].values() -%}
    {%- endif -%}
    {%- if vanished | length > 0 -%}
    alter table {{ this }} drop if exists
    {%- for day in vanished %}
        partition (metric_date = '{{ day }}'){{ "," if not loop.last }}
    {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- The whole config() of metrics_daily and metrics_hourly: incremental,
    replaced a whole metric_date at a time (a partition on Spark), with the
    watermark hooks (the metrics read the classifier step's output through
    int_conversations_segmented) and the removal of vanished days. -#}
{% macro metrics_incremental_config() %}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': partition_incremental_strategy(),
        'unique_key': 'metric_date',
        'partition_by': 'metric_date' if target.type == 'spark' else none,
        'on_schema_change': 'fail',
        'pre_hook': "{{ forget_stale_incremental_build() }}",
        'post_hook': [
            "{{ metrics_delete_vanished_days() }}",
            "{{ record_incremental_watermark(classified=true) }}",
        ],
    }) }}
{% endmacro %}
