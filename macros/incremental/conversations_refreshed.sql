{#- Which conversations each conversation-keyed incremental model rewrote
    in its latest build, so its data tests read those conversations only.
    audit.conversations_refreshed holds, per model, one row with a null
    conversation_id whose rewrote_every_conversation says whether the latest
    build rewrote everything (a full build), then one row per conversation it
    recomputed (conversations_to_refresh_cte(), the set its body selected).
    The post-hooks of keyed_incremental_config() replace a model's rows;
    data tests pick them up through default__get_where_subquery(). DuckDB
    only: on Spark these models are rebuilt as tables, and their tests read
    everything. -#}

{% macro conversations_refreshed_relation() %}
    {{ return(api.Relation.create(
        database=target.get('database'), schema='audit', identifier='conversations_refreshed'
    )) }}
{% endmacro %}

{#- on-run-start: the table, created if missing. -#}
{% macro create_conversations_refreshed() %}
    {{ return(adapter.dispatch('create_conversations_refreshed', 'convo_warehouse')()) }}
{% endmacro %}

{% macro default__create_conversations_refreshed() %}
    select 1
{% endmacro %}

{% macro duckdb__create_conversations_refreshed() %}
    create table if not exists {{ conversations_refreshed_relation() }} (
        model_name {{ dbt.type_string() }},
        conversation_id {{ dbt.type_string() }},
        rewrote_every_conversation {{ dbt.type_boolean() }}
    )
{% endmacro %}

{#- Post-hook: forget what the model's previous build rewrote, when this
    build moves the watermark (a build that changed nothing, a re-run or a
    full refresh of the same history, keeps the rows: it changes no byte).
    `classified`: the model reads the classifier step's output. -#}
{% macro forget_conversations_refreshed(classified=false) %}
    {{ return(adapter.dispatch('forget_conversations_refreshed', 'convo_warehouse')(classified)) }}
{% endmacro %}

{% macro default__forget_conversations_refreshed(classified) %}
    select 1
{% endmacro %}

{% macro duckdb__forget_conversations_refreshed(classified) %}
    delete from {{ conversations_refreshed_relation() }}
    where
        model_name = '{{ this.identifier }}'
        and {{ build_moves_watermark(classified) }}
{% endmacro %}

{#- Post-hook, after forget_conversations_refreshed() and before the
    watermark is recorded (so the watermark is still the one the body read):
    remember what this build rewrote (the set
    create_conversations_to_refresh() stored), when it moves the watermark.
    `classified`: as for forget_conversations_refreshed(). -#}
{% macro remember_conversations_refreshed(classified=false) %}
    {{ return(adapter.dispatch('remember_conversations_refreshed', 'convo_warehouse')(classified)) }}
{% endmacro %}

{% macro default__remember_conversations_refreshed(classified) %}
    select 1
{% endmacro %}

{% macro duckdb__remember_conversations_refreshed(classified) %}
    insert into {{ conversations_refreshed_relation() }}
    select rewritten.*
    from (
    select
        '{{ this.identifier }}' as model_name,
        cast(null as {{ dbt.type_string() }}) as conversation_id,
        {{ 'false' if is_incremental() else 'true' }} as rewrote_every_conversation
    {%- if is_incremental() %}
    union all
    select
        '{{ this.identifier }}' as model_name,
        refreshed.conversation_id,
        false as rewrote_every_conversation
    from {{ conversations_to_refresh_relation() }} as refreshed
    {%- endif %}
    ) as rewritten
    where {{ build_moves_watermark(classified) }}
{% endmacro %}

{#- Whether a data test of the current test node reads only the rows of the
    conversations its model's latest build rewrote: the model records them
    (meta.records_conversations_refreshed, set by keyed_incremental_config)
    and the test is answered by those rows alone, a row at a time
    (not_null, accepted_values, relationships, value_between,
    expression_is_true) or within a conversation (unique on conversation_id,
    unique_combination of columns that include it). A duplicate in any
    other key (an event_id) may pair a rewritten row with an untouched one,
    so such a test reads everything. -#}
{% macro is_scoped_to_conversations_refreshed() %}
    {%- set test = model.get('test_metadata') or {} -%}
    {%- set tested = graph.nodes.get(model.get('attached_node')) if model.get('attached_node') else none -%}
    {%- if not test or tested is none
        or not tested.config.get('meta', {}).get('records_conversations_refreshed') -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set arguments = test.get('kwargs', {}) -%}
    {%- if test.name in ('not_null', 'accepted_values', 'relationships', 'value_between', 'expression_is_true') -%}
        {{ return(true) }}
    {%- elif test.name == 'unique' -%}
        {{ return(arguments.get('column_name') == 'conversation_id') }}
    {%- elif test.name == 'unique_combination' -%}
        {{ return('conversation_id' in arguments.get('columns', [])) }}
    {%- endif -%}
    {{ return(false) }}
{% endmacro %}

{#- A `where` for such a test: the rows of the conversations the model's
    latest build rewrote; every row after a full build, when the model has
    recorded nothing yet, on --full-refresh and with the var
    `test_full_history`. Which of these holds is read when the test is
    compiled (in `dbt build`, right after its model is built), so the test
    itself is a plain semi-join: an `or` of the cases made DuckDB check every
    row against the list, 15 times slower on 8M steps. -#}
{% macro rewritten_by_latest_build(model_name) %}
    {{ return(adapter.dispatch('rewritten_by_latest_build', 'convo_warehouse')(model_name)) }}
{% endmacro %}

{% macro default__rewritten_by_latest_build(model_name) %}
    1 = 1
{% endmacro %}

{% macro duckdb__rewritten_by_latest_build(model_name) %}
    {%- set refreshed = conversations_refreshed_relation() -%}
    {%- if flags.FULL_REFRESH or var('test_full_history', false) or not execute -%}
        {%- set everything = true -%}
    {%- else -%}
        {%- set recorded = run_query(
            "select count(*), count(case when rewrote_every_conversation then 1 end) from " ~ refreshed
            ~ " where model_name = '" ~ model_name ~ "'"
        ) -%}
        {%- set everything = recorded.columns[0].values()[0] == 0 or recorded.columns[1].values()[0] > 0 -%}
    {%- endif -%}
    {%- if everything -%}
        1 = 1
    {%- else -%}
        conversation_id in (
            select recorded.conversation_id
            from {{ refreshed }} as recorded
            where
                recorded.model_name = '{{ model_name }}'
                and recorded.conversation_id is not null
        )
    {%- endif -%}
{% endmacro %}
