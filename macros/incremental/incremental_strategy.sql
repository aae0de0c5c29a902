{#- The incremental strategy for a model replaced key by key (an event id, a
    conversation, a day): delete+insert on DuckDB; merge elsewhere (Spark with
    Delta, Snowflake, BigQuery, Databricks), which every adapter with keyed
    upserts supports. Models get it through keyed_incremental_config(). -#}
{% macro keyed_incremental_strategy() %}
    {{ return(adapter.dispatch('keyed_incremental_strategy', 'convo_warehouse')()) }}
{% endmacro %}

{% macro default__keyed_incremental_strategy() %}
    {{ return('merge') }}
{% endmacro %}

{% macro duckdb__keyed_incremental_strategy() %}
    {{ return('delete+insert') }}
{% endmacro %}

{#- The incremental strategy for a model replaced a whole partition at a time
    (a day of metrics, a load run of parsed rows): delete+insert of the
    partition's rows on DuckDB; insert_overwrite of the partitions elsewhere
    (Spark, with partition_by the same column: Parquet tables without Delta
    support no merge). -#}
{% macro partition_incremental_strategy() %}
    {{ return(adapter.dispatch('partition_incremental_strategy', 'convo_warehouse')()) }}
{% endmacro %}

{% macro default__partition_incremental_strategy() %}
    {{ return('insert_overwrite') }}
{% endmacro %}

{% macro duckdb__partition_incremental_strategy() %}
    {{ return('delete+insert') }}
{% endmacro %}

{#- The materialization of a model replaced key by key: incremental where the
    adapter has a keyed strategy for the tables it writes; Spark merges only
    into Delta / Iceberg / Hudi tables, and this project writes Parquet there
    (no Delta jars offline, docs/spark.md), so on Spark such a model is
    rebuilt as a table each run until a merge-capable format is configured
    (var `spark_keyed_incremental: true` then). Models get it through
    keyed_incremental_config(). -#}
{% macro keyed_incremental_materialization() %}
    {{ return(adapter.dispatch('keyed_incremental_materialization', 'convo_warehouse')()) }}
{% endmacro %}

{% macro default__keyed_incremental_materialization() %}
    {{ return('incremental') }}
{% endmacro %}

{% macro spark__keyed_incremental_materialization() %}
    {{ return('incremental' if var('spark_keyed_incremental', false) else 'table') }}
{% endmacro %}

{#- The arguments the watermark hooks of a model take, as hook source text:
    `seeds` (seed/model names whose rows also count) and `vars` (var names
    whose values also count), so the pre-hook and the post-hook always name
    the same ones. -#}
{% macro watermark_hook_arguments(seeds=[], vars=[]) %}
    {%- set arguments = [] -%}
    {%- if seeds -%}
        {%- do arguments.append("seeds=[ref('" ~ seeds | join("'), ref('") ~ "')]") -%}
    {%- endif -%}
    {%- if vars -%}
        {%- do arguments.append("vars=['" ~ vars | join("', '") ~ "']") -%}
    {%- endif -%}
    {{ return(arguments | join(", ")) }}
{% endmacro %}

{#- The post-hook recording a model's watermark, as hook source text:
    `arguments` from watermark_hook_arguments(); `classified`: the model reads
    the classifier step's output (its watermark keeps classified_through). -#}
{% macro record_watermark_hook(arguments, classified=false) %}
    {{ return(
        "{{ record_incremental_watermark("
        ~ ([arguments, "classified=true"] | select | join(", ") if classified else arguments)
        ~ ") }}"
    ) }}
{% endmacro %}

{#- The whole config() of a model replaced key by key, so the materialization,
    strategy and the pair of watermark hooks are written once, and the two
    hooks always name the same `seeds` (seed/model names whose rows also
    count) and `vars` (var names whose values also count). `refresh`: the
    arguments of conversations_to_refresh_cte() the model's body uses; the
    post-hooks record the conversations a build rewrote (for its data tests,
    conversations_refreshed.sql) and, with newly_classified, how far the
    watermark has seen the classifier step's output. A model writes
    `{{ config(**keyed_incremental_config('conversation_id')) }}`. -#}
{% macro keyed_incremental_config(unique_key, seeds=[], vars=[], refresh={}) %}
    {%- set arguments = watermark_hook_arguments(seeds, vars) -%}
    {%- set classified = refresh.get('newly_classified', false) -%}
    {{ return({
        'materialized': keyed_incremental_materialization(),
        'incremental_strategy': keyed_incremental_strategy(),
        'unique_key': unique_key,
        'on_schema_change': 'fail',
        'pre_hook': [
            "{{ forget_stale_incremental_build(" ~ arguments ~ ") }}",
            "{{ create_conversations_to_refresh(" ~ (refresh | tojson) ~ ") }}",
        ],
        'post_hook': [
            "{{ forget_conversations_refreshed(" ~ (classified | tojson) ~ ") }}",
            "{{ remember_conversations_refreshed(" ~ (classified | tojson) ~ ") }}",
            record_watermark_hook(arguments, classified),
            "{{ drop_conversations_to_refresh() }}",
        ],
        'meta': {'records_conversations_refreshed': true},
    }) }}
{% endmacro %}

{#- The whole config() of a model replaced conversation by conversation: one
    conversation has any number of rows and may lose some (the funnel chain),
    so the pre-hook delete_conversations_to_refresh() removes every row of
    the conversations the run recomputes and the body's rows are appended.
    `refresh`: the arguments of conversations_to_refresh_cte() the body uses
    (the hook computes the same set); `seeds` and `vars` as in
    keyed_incremental_config(). A model writes
    `{%- set refresh = {...} -%}{{ config(**conversation_replaced_config(refresh)) }}`
    and `{{ conversations_to_refresh_cte(**refresh) }}`. -#}
{% macro conversation_replaced_config(refresh={}, seeds=[], vars=[]) %}
    {%- set config = keyed_incremental_config('conversation_id', seeds, vars, refresh) -%}
    {%- do config.update({
        'incremental_strategy': 'append',
        'pre_hook': config.pre_hook + ["{{ delete_conversations_to_refresh() }}"],
    }) -%}
    {{ return(config) }}
{% endmacro %}

{#- The whole config() of a model whose rows aggregate conversations by day
    (`day_column`): a day has any number of rows and may lose some, so the
    pre-hook delete_days_to_refresh() removes every row of the days the run
    recomputes and the body's rows are appended. `refresh`: the arguments of
    conversations_to_refresh_cte() behind the body's
    days_to_refresh_cte(refresh) (the hook computes the same days); `seeds`
    and `vars` as in keyed_incremental_config(), including those of the
    upstream models the body reads (a seed that rebuilds them rebuilds this
    too). Rebuilt as a table on Spark, as the keyed models are. -#}
{% macro day_replaced_config(refresh={}, day_column='conversation_date', seeds=[], vars=[]) %}
    {%- set arguments = watermark_hook_arguments(seeds, vars) -%}
    {{ return({
        'materialized': keyed_incremental_materialization(),
        'incremental_strategy': 'append',
        'on_schema_change': 'fail',
        'pre_hook': [
            "{{ forget_stale_incremental_build(" ~ arguments ~ ") }}",
            "{{ delete_days_to_refresh(" ~ (refresh | tojson) ~ ", '" ~ day_column ~ "') }}",
        ],
        'post_hook': [
            record_watermark_hook(arguments, refresh.get('newly_classified', false)),
        ],
    }) }}
{% endmacro %}
