{#- Spark's incremental runs (docs/spark.md#incremental-runs): dbt-spark's
    insert_overwrite strategy on Parquet tables partitioned by a day (or a
    load run), with dynamic partition overwrite, so a run rewrites only the
    partitions its rows fall in. Defined here, by the name dbt-spark's
    incremental materialization calls, so the rows are checked before the
    partitions are replaced, as replace_scope checks them on DuckDB.

    The scope is the model's (scope_key, scope_model, scope_column, as for
    replace_scope); a model configured scope_from_rows
    (scope_conversation_lifecycle, which computes its scope itself) replaces
    the keys its rows hold. Before writing:
      - the rows the body returned are in the scope and hold the grain
        (check_rows_to_insert, as on DuckDB);
      - every partition the run rewrites holds only rows of the scope's
        keys: dynamic overwrite replaces a partition whole, so a row of
        another key there would be lost (the scope models widen the scope
        to whole days on Spark so this holds: scope_conversations);
      - a partition that held rows of the scope's keys and gets none now
        (the day a late event moved its only conversation away from) is
        dropped: dynamic overwrite leaves a partition it writes no row to
        as it was.
    The rows are computed once, into a table beside the model's
    (<model>__dbt_rows, dropped by the post-hook release_rows_to_insert), for
    the checks and the insert: dbt's temporary view would be planned again
    by every statement reading it.
    Without partition_by, dbt-spark's own statement. -#}
{% macro get_insert_overwrite_sql(source_relation, target_relation, existing_relation) %}
    {%- set dest_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- set dest_cols_csv = dest_columns | map(attribute='quoted') | join(', ') -%}
    {%- set partition_by = config.get('partition_by') -%}
    {%- if partition_by and not existing_relation.is_iceberg -%}
        {%- set source_relation = replace_partitions_checked(source_relation, target_relation, partition_by) -%}
    {%- endif -%}
    {% if existing_relation.is_iceberg %}
      insert overwrite {{ target_relation }}
    {% else %}
      insert overwrite table {{ target_relation }}
      {{ partition_cols(label="partition") }}
    {% endif %}
    select {{ dest_cols_csv }} from {{ source_relation }}
{% endmacro %}

{#- The checks and the dropped partitions of get_insert_overwrite_sql (one
    partition column); returns the table holding the rows to insert. -#}
{% macro replace_partitions_checked(new_rows_view, target_relation, partition_by) -%}
    {%- set partition = partition_by if partition_by is string else partition_by[0] -%}
    {%- if partition_by is not string and partition_by | length != 1 -%}
        {{ exceptions.raise_compiler_error(this.identifier ~ ': one partition column is supported, got ' ~ partition_by) }}
    {%- endif -%}
    {%- set scope_key = config.get('scope_key', 'conversation_id') -%}
    {%- set new_rows = rows_to_insert_relation(target_relation) -%}
    {%- do run_query('drop table if exists ' ~ new_rows) -%}
    {%- do run_query('create table ' ~ new_rows ~ ' using parquet as select * from ' ~ new_rows_view) -%}
    {%- set scope_from_rows = config.get('scope_from_rows', false) -%}
    {%- set scope_relation = new_rows if scope_from_rows else ref(config.get('scope_model', 'scope_conversations')) -%}
    {%- set scope_column = scope_key if scope_from_rows else config.get('scope_column', scope_key) -%}
    {%- set in_scope = scope_key ~ ' in (select scope.' ~ scope_column ~ ' from ' ~ scope_relation ~ ' as scope)' -%}
    {%- do check_rows_to_insert(new_rows, target_relation, in_scope) -%}
    {#- the partitions rewritten: those of the new rows, and those of the
        scope's rows now (a day its rows left) -#}
    {%- set partitions = run_query(
        'select distinct new_rows.' ~ partition ~ ', true as has_new_rows from ' ~ new_rows ~ ' as new_rows'
        ~ ' union all select distinct kept.' ~ partition ~ ', false from ' ~ target_relation ~ ' as kept'
        ~ ' where coalesce(kept.' ~ in_scope ~ ', false)'
    ).rows -%}
    {%- set written = [] -%}
    {%- set left = [] -%}
    {%- for row in partitions -%}
        {%- do (written if row[1] else left).append(row[0]) -%}
    {%- endfor -%}
    {%- set vanished = left | reject('in', written) | unique | list -%}
    {%- set rewritten = (written + vanished) | unique | list -%}
    {%- if rewritten | length > 0 -%}
        {%- set outside = run_query(
            'select count(*), min(kept.' ~ scope_key ~ ') from ' ~ target_relation ~ ' as kept'
            ~ ' where kept.' ~ partition ~ ' in (' ~ partition_literals(rewritten) | join(', ') ~ ')'
            ~ ' and not coalesce(kept.' ~ in_scope ~ ', false)'
        ).rows[0] -%}
        {%- if outside[0] > 0 -%}
            {{ exceptions.raise_compiler_error(
                this.identifier ~ ': ' ~ outside[0] ~ ' rows of keys outside this run\'s scope (e.g. ' ~ scope_key
                ~ ' = ' ~ outside[1] ~ ') lie in the ' ~ partition ~ ' partitions it rewrites, and would be lost;'
                ~ ' nothing was written. The scope must hold every key of the partitions it touches'
                ~ ' (scope_conversations on Spark).'
            ) }}
        {%- endif -%}
    {%- endif -%}
    {%- if vanished | length > 0 -%}
        {%- set dropped = [] -%}
        {%- for value in partition_literals(vanished) -%}
            {%- do dropped.append('partition (' ~ partition ~ ' = ' ~ value ~ ')') -%}
        {%- endfor -%}
        {%- do run_query('alter table ' ~ target_relation ~ ' drop if exists ' ~ dropped | join(', ')) -%}
    {%- endif -%}
    {{ return(new_rows) }}
{%- endmacro %}

{#- Where replace_partitions_checked keeps the rows to insert. -#}
{% macro rows_to_insert_relation(target_relation) -%}
    {{ return(api.Relation.create(
        database=target_relation.database, schema=target_relation.schema,
        identifier=target_relation.identifier ~ '__dbt_rows', type='table',
    )) }}
{%- endmacro %}

{#- SQL literals of partition values (dates, numbers or text). -#}
{% macro partition_literals(values) -%}
    {%- set literals = [] -%}
    {%- for value in values -%}
        {%- if value is none -%}
            {%- do literals.append('null') -%}
        {%- elif value is number -%}
            {%- do literals.append(value | string) -%}
        {%- else -%}
            {%- do literals.append("'" ~ (value | string) ~ "'") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(literals) }}
{%- endmacro %}

{#- post-hook of every model: the table of the rows an incremental
    insert_overwrite run checked and inserted is dropped (Spark only). -#}
{% macro release_rows_to_insert() -%}
    {%- if execute and target.type == 'spark' and config.get('materialized') == 'incremental'
        and config.get('incremental_strategy') == 'insert_overwrite' and config.get('partition_by')
        and is_incremental() -%}
        drop table if exists {{ rows_to_insert_relation(this) }}
    {%- endif -%}
{%- endmacro %}
