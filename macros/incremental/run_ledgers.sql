{% macro create_run_ledgers() -%}
    {%- if execute -%}
    {%- do run_query('create schema if not exists audit') -%}
    {%- do run_query(
        'create table if not exists audit.scope_runs ('
        ~ 'invocation_id ' ~ dbt.type_string() ~ ', '
        ~ 'through_load_id ' ~ dbt.type_bigint() ~ ', '
        ~ 'clock ' ~ dbt.type_timestamp() ~ ', '
        ~ 'classified_through ' ~ dbt.type_timestamp() ~ ', '
        ~ 'recorded_at ' ~ dbt.type_timestamp() ~ ')'
    ) -%}
    {%- do run_query(
        'create table if not exists audit.partitions_rewritten ('
        ~ 'relation_name ' ~ dbt.type_string() ~ ', '
        ~ 'partition_date ' ~ type_date() ~ ', '
        ~ 'rewrote_all ' ~ dbt.type_boolean() ~ ', '
        ~ 'recorded_at ' ~ dbt.type_timestamp()
        ~ (', entry ' ~ dbt.type_string() ~ ') using parquet partitioned by (entry)' if target.type == 'spark' else ')')
    ) -%}
    {%- endif -%}
{%- endmacro %}

{% macro record_full_build() -%}
    {%- if execute and config.get('materialized') == 'incremental' and not is_incremental()
        and (config.get('incremental_strategy') == 'replace_scope'
            or (target.type == 'spark' and config.get('incremental_strategy') == 'insert_overwrite'
                and 'scope' not in config.get('tags', []))) -%}
        {%- set relation_name = this.schema ~ '.' ~ this.identifier -%}
        {%- if target.type == 'spark' %}
        insert overwrite table audit.partitions_rewritten partition (entry)
        {%- else %}
        insert into audit.partitions_rewritten
        {%- endif %}
        select {{ string_literal(relation_name) }}, cast(null as {{ type_date() }}), true, {{ dbt.current_timestamp() }}
            {{- ', ' ~ string_literal(invocation_id ~ '/' ~ relation_name) if target.type == 'spark' }}
    {%- endif -%}
{%- endmacro %}

{% macro scoped_models() -%}
    {%- set models = [] -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.config.materialized == 'incremental'
            and node.config.get('incremental_strategy') in ('replace_scope', 'insert_overwrite')
            and 'scope' not in node.tags -%}
        {%- do models.append(node) -%}
    {%- endfor -%}
    {{ return(models) }}
{%- endmacro %}

{% macro record_run_scope(results) -%}
    {%- if execute and target.type == 'duckdb' -%}
        {%- set built = {} -%}
        {%- for result in results if result.status == 'success' -%}
            {%- do built.update({result.node.name: result.node.relation_name}) -%}
        {%- endfor -%}
        {%- set needed = scoped_models() | map(attribute='name') | list -%}
        {%- if needed and not (needed + ['scope_run', 'scope_days']) | reject('in', built) | list -%}
            {#- a hook's ref() would need a depends_on: the relations this invocation built -#}
            {%- do record_steps_scope(scope_run=built.scope_run, scope_days=built.scope_days) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro partitions_rewritten_insert(scope_days, relations, since=none) -%}
        insert into audit.partitions_rewritten
        select models.relation_name, scope_days.event_date, false, {{ dbt.current_timestamp() }}
            {{- ', ' ~ string_literal(invocation_id) if target.type == 'spark' }}
        from {{ scope_days }} as scope_days
        cross join (values {{ relations | join(', ') }}) as models (relation_name)
        where not exists (
            select 1 from audit.partitions_rewritten as whole
            where
                whole.relation_name = models.relation_name
                and whole.rewrote_all
                and whole.recorded_at >= {{ timestamp_literal(since or run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f')) }}
        )
{%- endmacro %}

{% macro scope_runs_insert(scope_run) -%}
        insert into audit.scope_runs
        select
            {{ string_literal(invocation_id) }},
            scope_run.through_load_id,
            scope_run.clock,
            scope_run.classified_through,
            {{ dbt.current_timestamp() }}
        from {{ scope_run }} as scope_run
        where not exists (
            select 1
            from audit.scope_runs as covered
            where
                covered.through_load_id is not distinct from scope_run.through_load_id
                and covered.clock is not distinct from scope_run.clock
                and covered.classified_through is not distinct from scope_run.classified_through
                and covered.recorded_at = (select max(newest.recorded_at) from audit.scope_runs as newest)
        )
{%- endmacro %}

{% macro record_steps_scope(since=none, scope_run=none, scope_days=none) -%}
    {%- set relations = [] -%}
    {%- for node in scoped_models() -%}
        {%- do relations.append("(" ~ string_literal(node.schema ~ '.' ~ (node.alias or node.name)) ~ ")") -%}
    {%- endfor -%}
    {%- set scope_run = scope_run or ref('scope_run') -%}
    {%- set scope_days = scope_days or ref('scope_days') -%}
    {%- if relations -%}
        {%- do run_query(partitions_rewritten_insert(scope_days, relations, since)) -%}
    {%- endif -%}
    {%- do run_query(scope_runs_insert(scope_run)) -%}
    {%- do adapter.commit() if target.type == 'duckdb' -%}
    {{ log('recorded the run: ' ~ relations | length ~ ' models, the days of ' ~ scope_days, info=true) }}
{%- endmacro %}
