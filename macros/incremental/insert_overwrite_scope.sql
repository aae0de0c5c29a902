{#- the body runs once: into <model>__dbt_rows, which dbt-spark's view then reads -#}
{% macro spark__create_temporary_view(relation, compiled_code) -%}
    {%- if writes_rows_to_insert() -%}
        {%- set new_rows = rows_to_insert_relation(this) -%}
        {#- the post-hook drops it after each run: it exists only after a failed one -#}
        {%- if adapter.get_relation(database=new_rows.database, schema=new_rows.schema, identifier=new_rows.identifier) -%}
            {%- do run_query('drop table if exists ' ~ new_rows) -%}
        {%- endif -%}
        {%- do run_query('create table ' ~ new_rows ~ ' using parquet as ' ~ compiled_code) -%}
        {%- set compiled_code = 'select * from ' ~ new_rows -%}
    {%- endif %}
    create or replace temporary view {{ relation }} as
      {{ compiled_code }}
{%- endmacro %}

{% macro writes_rows_to_insert() -%}
    {{ return(execute and target.type == 'spark' and config.get('materialized') == 'incremental'
        and config.get('incremental_strategy') == 'insert_overwrite' and config.get('partition_by')
        and config.get('file_format', 'parquet') == 'parquet' and is_incremental()) }}
{%- endmacro %}

{% macro get_insert_overwrite_sql(source_relation, target_relation, existing_relation) %}
    {%- if writes_rows_to_insert() -%}
        {%- set rows = replace_partitions_checked(target_relation, config.get('partition_by')) -%}
        {#- the columns by name; with an on_schema_change check (it has compared the
            rows' columns with the table's) in the rows' order, so the table needs no describe -#}
        {%- set checked = config.get('on_schema_change', 'ignore') != 'ignore' -%}
        {%- set columns = adapter.get_columns_in_relation(source_relation if checked else target_relation)
            | map(attribute='quoted') | join(', ') -%}
      insert overwrite table {{ target_relation }}
      {{ partition_cols(label="partition") }} ({{ columns }})
      select {{ columns }} from {{ rows }}
    {%- else -%}
        {{ dbt.get_insert_overwrite_sql(source_relation, target_relation, existing_relation) }}
    {%- endif %}
{% endmacro %}

{% macro replace_partitions_checked(target_relation, partition_by) -%}
    {%- set partition = partition_by if partition_by is string else partition_by[0] -%}
    {%- if partition_by is not string and partition_by | length != 1 -%}
        {{ exceptions.raise_compiler_error(this.identifier ~ ': one partition column is supported, got ' ~ partition_by) }}
    {%- endif -%}
    {%- set scope_key = config.get('scope_key', 'conversation_id') -%}
    {%- set new_rows = rows_to_insert_relation(target_relation) -%}
    {%- set scope_from_rows = config.get('scope_from_rows', false) -%}
    {%- set scope_relation = new_rows if scope_from_rows else ref(config.get('scope_model', 'scope_conversations')) -%}
    {%- set scope_column = scope_key if scope_from_rows else config.get('scope_column', scope_key) -%}
    {%- set in_scope = scope_key ~ ' in (select scope.' ~ scope_column ~ ' from ' ~ scope_relation ~ ' as scope)' -%}
    {#- One statement: rows_to_insert_counts, and per partition, in one
        pass over the table, whether it gets new rows and how many of its rows
        belong to keys in the scope and outside it (no partition: one row of
        counts, the partition's columns null). -#}
    {%- set rows = run_query(
        'select checks.*, partitions.* from (select ' ~ rows_to_insert_counts(new_rows, target_relation, in_scope)
        ~ ') as checks left join ('
        ~ ' select partitions.' ~ partition ~ ' as partition_value, max(partitions.new_rows) as gets_new_rows,'
        ~ ' max(partitions.kept_in_scope) as holds_scope, sum(partitions.kept_outside) as rows_outside,'
        ~ ' min(partitions.outside_key) as key_outside from ('
        ~ ' select distinct new_rows.' ~ partition ~ ', 1 as new_rows, 0 as kept_in_scope, 0 as kept_outside,'
        ~ ' null as outside_key from ' ~ new_rows ~ ' as new_rows'
        ~ ' union all select kept.' ~ partition ~ ', 0,'
        ~ ' case when scope.scope_value is null then 0 else 1 end,'
        ~ ' case when scope.scope_value is null then 1 else 0 end,'
        ~ ' case when scope.scope_value is null then kept.' ~ scope_key ~ ' end'
        ~ ' from ' ~ target_relation ~ ' as kept left join (select distinct scope.' ~ scope_column
        ~ ' as scope_value from ' ~ scope_relation ~ ' as scope) as scope'
        ~ ' on kept.' ~ scope_key ~ ' = scope.scope_value'
        ~ ') as partitions group by partitions.' ~ partition
        ~ ') as partitions on 1 = 1'
    ).rows -%}
    {%- do raise_rows_to_insert(rows[0], new_rows, in_scope) -%}
    {%- set dropped = [] -%}
    {%- set outside = namespace(rows=0, key=none) -%}
    {%- for row in rows if row[5] == 1 or row[6] == 1 -%}
        {%- set literal = 'null' if row[4] is none else row[4] if row[4] is number else "'" ~ row[4] ~ "'" -%}
        {%- do dropped.append('partition (' ~ partition ~ ' = ' ~ literal ~ ')') if row[5] == 0 -%}
        {%- set outside.rows = outside.rows + row[7] -%}
        {%- set outside.key = row[8] if outside.key is none else outside.key -%}
    {%- endfor -%}
    {%- if outside.rows > 0 -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ ': ' ~ outside.rows ~ ' rows of keys outside this run\'s scope (e.g. ' ~ scope_key
            ~ ' = ' ~ outside.key ~ ') lie in the ' ~ partition ~ ' partitions it rewrites, and would be lost;'
            ~ ' nothing was written. The scope must hold every key of the partitions it touches'
            ~ ' (scope_conversations on Spark).'
        ) }}
    {%- endif -%}
    {%- if dropped -%}
        {#- partitions that held rows of the scope's keys and get none now -#}
        {%- do run_query('alter table ' ~ target_relation ~ ' drop if exists ' ~ dropped | join(', ')) -%}
    {%- endif -%}
    {{ return(new_rows) }}
{%- endmacro %}

{% macro rows_to_insert_relation(target_relation) -%}
    {{ return(api.Relation.create(
        database=target_relation.database, schema=target_relation.schema,
        identifier=target_relation.identifier ~ '__dbt_rows', type='table',
    )) }}
{%- endmacro %}

{% macro release_rows_to_insert() -%}
    {%- if writes_rows_to_insert() -%}
        drop table if exists {{ rows_to_insert_relation(this) }}
    {%- endif -%}
{%- endmacro %}
