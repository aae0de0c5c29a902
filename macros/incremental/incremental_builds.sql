{#- What each replace_touched model was built from, kept outside the
    models (so a mart's bytes never depend on how it was built):
    audit.incremental_builds gets one row per build that moved the model
    (append only: no UPDATE or DELETE, which Spark tables without Delta
    lack); the newest row of a model counts.
      loaded_through_load_id  the newest load run parsed when it was built
      newest_event_at         the warehouse clock then (newest staged
                              event); the staged events' model records it
                              for every other model to read
      classified_through      the newest time the classifier step had
                              written anything (models touched by it)
      build_fingerprint       build_fingerprint(): a change rebuilds every key
      recorded_at             when the row was written
    audit.partitions_rewritten: one row per day a build rewrote (or one row
    saying it rewrote everything), for the snapshot publisher.
    audit.keys_rewritten: the keys (conversations, days or load runs) the
    newest build that moved each model replaced, for the data tests that
    check what a run wrote (written_rows()): a header row per model (key
    null; rewrote_all true for a full build) and one row per key. A model's
    rows are replaced by each build that moves it (a DELETE: DuckDB only;
    on Spark every build is full and nothing is recorded). -#}

{% macro incremental_builds_relation() -%}
    {{ return(api.Relation.create(
        database=target.get('database'), schema='audit', identifier='incremental_builds'
    )) }}
{%- endmacro %}

{% macro keys_rewritten_relation() -%}
    {{ return(api.Relation.create(
        database=target.get('database'), schema='audit', identifier='keys_rewritten'
    )) }}
{%- endmacro %}

{% macro partitions_rewritten_relation() -%}
    {{ return(api.Relation.create(
        database=target.get('database'), schema='audit', identifier='partitions_rewritten'
    )) }}
{%- endmacro %}

{#- The three tables, created if missing: an on-run-start hook
    (dbt_project.yml), so once per dbt invocation rather than by every model
    (four statements each). DuckDB only: on Spark every build is full and
    nothing is recorded. -#}
{% macro create_incremental_audit_tables() -%}
    {%- if not execute or target.type == 'spark' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set builds = incremental_builds_relation() -%}
    {%- do run_query('create schema if not exists ' ~ builds.without_identifier()) -%}
    {%- do run_query(
        'create table if not exists ' ~ builds ~ ' ('
        ~ 'model_name ' ~ dbt.type_string() ~ ', '
        ~ 'loaded_through_load_id ' ~ dbt.type_bigint() ~ ', '
        ~ 'newest_event_at ' ~ dbt.type_timestamp() ~ ', '
        ~ 'classified_through ' ~ dbt.type_timestamp() ~ ', '
        ~ 'build_fingerprint ' ~ dbt.type_string() ~ ', '
        ~ 'recorded_at ' ~ dbt.type_timestamp() ~ ')'
    ) -%}
    {%- do run_query(
        'create table if not exists ' ~ partitions_rewritten_relation() ~ ' ('
        ~ 'relation_name ' ~ dbt.type_string() ~ ', '
        ~ 'partition_date ' ~ type_date() ~ ', '
        ~ 'rewrote_all ' ~ dbt.type_boolean() ~ ', '
        ~ 'recorded_at ' ~ dbt.type_timestamp() ~ ')'
    ) -%}
    {%- do run_query(
        'create table if not exists ' ~ keys_rewritten_relation() ~ ' ('
        ~ 'relation_name ' ~ dbt.type_string() ~ ', '
        ~ 'touched_key ' ~ dbt.type_string() ~ ', '
        ~ 'rewrote_all ' ~ dbt.type_boolean() ~ ', '
        ~ 'recorded_at ' ~ dbt.type_timestamp() ~ ')'
    ) -%}
{%- endmacro %}

{#- The newest build row of every model, as {model_name: row}. -#}
{% macro latest_builds() -%}
    {%- set builds = incremental_builds_relation() -%}
    {%- set rows = run_query(
        'select builds.model_name, builds.loaded_through_load_id, builds.newest_event_at, '
        ~ 'builds.classified_through, builds.build_fingerprint '
        ~ 'from ' ~ builds ~ ' as builds '
        ~ 'inner join (select newest.model_name, max(newest.recorded_at) as recorded_at from ' ~ builds
        ~ ' as newest group by newest.model_name) as newest '
        ~ 'on builds.model_name = newest.model_name and builds.recorded_at = newest.recorded_at'
    ) -%}
    {%- set latest = {} -%}
    {%- for row in rows -%}
        {%- do latest.update({row[0]: {
            'loaded_through_load_id': row[1],
            'newest_event_at': row[2],
            'classified_through': row[3],
            'fingerprint': row[4],
        }}) -%}
    {%- endfor -%}
    {{ return(latest) }}
{%- endmacro %}

{#- Where the history stands for this build: how far its inputs have come.
    Each of the newest load run (of raw.events for a model keyed by load, of
    the staged events otherwise), the clock (when a clock touches the model)
    and the newest classifier output it reads (when that touches it) is read
    from the data (a max over a column: from its statistics, or a scan of
    base_events_parsed's first-delivery flag and the column) and held back to what a replace_touched model upstream
    recorded, when that one lags (has not processed what is there now): a
    model built while an upstream one lags (dbt run --select of it alone)
    does not move past what that one has processed, and picks the rest up
    once it has. Loads and the clock are the same history for every model;
    the classifier outputs differ by model, so an upstream model lags only if
    the outputs it reads hold something newer than it recorded. -#}
{% macro history_position(kind, touched_by, latest) -%}
    {#- the staged events are base_events_parsed's is_first_delivery rows
        (stg_events is a view of them); its build row records the newest
        load run it parsed and the clock (staged_events_clock()), read here
        instead of scanning every event, unless it has recorded no clock yet -#}
    {%- set staged = graph_relation(staged_events_model_id()) -%}
    {%- set staged_build = latest.get(staged.identifier) -%}
    {%- set clock_recorded = kind != 'load' and staged_build is not none
        and staged_build.newest_event_at is not none and staged_build.loaded_through_load_id is not none -%}
    {%- set selects = [
        '(select max(loads.load_id) from ' ~ graph_relation('source.convo_warehouse.raw.events') ~ ' as loads)'
            if kind == 'load'
            else (staged_build.loaded_through_load_id if clock_recorded
                else '(select max(loads.load_id) from ' ~ staged ~ ' as loads where loads.is_first_delivery)'),
        'cast(null as ' ~ dbt.type_timestamp() ~ ')'
            if kind == 'load' or clock_recorded
            else '(select max(clock.event_at) from ' ~ staged ~ ' as clock where clock.is_first_delivery)',
    ] -%}
    {#- only the outputs this model reads (so those of every model upstream
        too): another one may not be built yet (dbt run --select) -#}
    {%- set read = classifier_outputs_read() | map(attribute=0) | list -%}
    {%- for name, written_at in classifier_outputs() -%}
        {%- do selects.append(
            '(select max(output.' ~ written_at ~ ') from '
            ~ graph_relation('model.convo_warehouse.' ~ name) ~ ' as output)'
            if 'classifier_output' in touched_by and name in read
            else 'cast(null as ' ~ dbt.type_timestamp() ~ ')'
        ) -%}
    {%- endfor -%}
    {%- set row = run_query('select ' ~ selects | join(', ')).rows[0] -%}
    {%- set clock = staged_build.newest_event_at if clock_recorded else row[1] -%}
    {%- set written = {} -%}
    {%- for name, written_at in classifier_outputs() -%}
        {%- do written.update({name: row[2 + loop.index0]}) -%}
    {%- endfor -%}
    {%- set uses_clock = 'abandonment_clock' in touched_by or 'conversion_window' in touched_by -%}
    {%- set position = {
        'loaded_through_load_id': row[0],
        'newest_event_at': clock if uses_clock else none,
        'classified_through': newest_written(written, classifier_outputs_read()) if 'classifier_output' in touched_by else none,
    } -%}
    {%- for unique_id in upstream_nodes() -%}
        {%- set node = graph.nodes.get(unique_id) -%}
        {%- set recorded = latest.get(node.alias or node.name) if node and node.config.materialized == 'replace_touched' else none -%}
        {%- if recorded -%}
            {%- for field in ['loaded_through_load_id', 'newest_event_at'] -%}
                {%- if position[field] is not none and recorded[field] is not none and recorded[field] < position[field] -%}
                    {%- do position.update({field: recorded[field]}) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set its_newest = newest_written(written, classifier_outputs_read(node)) -%}
            {%- if position.classified_through is not none and recorded.classified_through is not none
                and its_newest is not none and recorded.classified_through < its_newest
                and recorded.classified_through < position.classified_through -%}
                {%- do position.update({'classified_through': recorded.classified_through}) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(position) }}
{%- endmacro %}

{#- The newest write time among the classifier outputs `read` (pairs of
    classifier_outputs()), from `written` (name -> its newest write time). -#}
{% macro newest_written(written, read) -%}
    {%- set times = [] -%}
    {%- for name, written_at in read if written[name] is not none -%}
        {%- do times.append(written[name]) -%}
    {%- endfor -%}
    {{ return(times | max if times else none) }}
{%- endmacro %}

{#- The model holding the staged events (base_events_parsed): every other
    model's history position is read from what its builds record. -#}
{% macro staged_events_model_id() -%}
    {{ return('model.convo_warehouse.base_events_parsed') }}
{%- endmacro %}

{#- The clock the staged events' model records in its build row: the newest
    staged event (first deliveries), the newest of the clock its previous
    build recorded and the rows of the load runs `keys` it parsed now. A
    load run's rows never change once parsed, so the clock moves only with
    new load runs and needs no scan of every event, except after a full
    build (`keys` none) and when the previous build recorded no clock (a
    warehouse built before the clock was recorded). -#}
{% macro staged_events_clock(relation, previous, keys) -%}
    {%- set from_previous = keys is not none and previous is not none and previous.newest_event_at is not none -%}
    {%- set parsed_now = touched_condition('staged.load_id', 'load', keys, none) if from_previous else 'true' -%}
    {%- set newest = run_query(
        'select max(staged.event_at) from ' ~ relation ~ ' as staged where staged.is_first_delivery and ' ~ parsed_now
    ).rows[0][0] -%}
    {%- set earlier = previous.newest_event_at if from_previous else none -%}
    {%- if newest is none or (earlier is not none and earlier > newest) -%}
        {{ return(earlier) }}
    {%- endif -%}
    {{ return(newest) }}
{%- endmacro %}

{#- Whether a build moves its model: it was never built, or where the
    history stands or its fingerprint differs from the newest build row. -#}
{% macro build_moved(previous, position, fingerprint) -%}
    {{ return(previous is none
        or previous.loaded_through_load_id != position.loaded_through_load_id
        or previous.newest_event_at != position.newest_event_at
        or previous.classified_through != position.classified_through
        or previous.fingerprint != fingerprint) }}
{%- endmacro %}

{#- Append the build's row, unless it would repeat the newest one (a
    re-run with nothing new changes no byte). -#}
{% macro record_build(model_name, position, fingerprint, previous) -%}
    {%- if not build_moved(previous, position, fingerprint) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- call statement('record_build') -%}
        insert into {{ incremental_builds_relation() }}
        select
            {{ string_literal(model_name) }},
            {{ position.loaded_through_load_id if position.loaded_through_load_id is not none else 'null' }},
            {{ timestamp_literal(position.newest_event_at) if position.newest_event_at is not none else 'null' }},
            {{ timestamp_literal(position.classified_through) if position.classified_through is not none else 'null' }},
            {{ string_literal(fingerprint) }},
            {{ dbt.current_timestamp() }}
    {%- endcall -%}
{%- endmacro %}

{#- The grain `unique_key` (a column or a list) holds among the rows of
    `relation` that `condition` selects (all of them when none): a build
    fails, before it commits, naming a duplicated key. -#}
{% macro check_unique_key(relation, unique_key, condition) -%}
    {%- if not unique_key -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set columns = [unique_key] if unique_key is string else unique_key -%}
    {%- set duplicates = run_query(
        'select ' ~ columns | join(', ') ~ ', count(*) as copies from ' ~ relation
        ~ (' where ' ~ condition if condition else '')
        ~ ' group by ' ~ columns | join(', ') ~ ' having count(*) > 1 limit 3'
    ) -%}
    {%- if duplicates.rows | length > 0 -%}
        {%- set example = [] -%}
        {%- for column in columns -%}
            {%- do example.append(column ~ '=' ~ duplicates.rows[0][loop.index0]) -%}
        {%- endfor -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ ': the rows this build wrote repeat its unique key (' ~ columns | join(', ')
            ~ '), e.g. ' ~ example | join(', ') ~ ' (' ~ duplicates.rows[0][columns | length] ~ ' rows); '
            ~ 'the build is rolled back. Find the join or union that duplicates them.'
        ) }}
    {%- endif -%}
{%- endmacro %}

{#- The days (as literals) of the rows of the touched keys in `relation`
    now, for record_partitions_rewritten(); [] without a day column. -#}
{% macro days_of_touched_rows(relation, key, kind, day_column, keys, touched_relation) -%}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- if day_column | lower not in columns -%}
        {{ return([]) }}
    {%- endif -%}
    {%- if kind == 'day' -%}
        {{ return(keys | map('string') | list) }}
    {%- endif -%}
    {%- set days = run_query(
        'select distinct cast(cast(' ~ day_column ~ ' as ' ~ type_date() ~ ') as ' ~ dbt.type_string() ~ ') from ' ~ relation
        ~ ' where ' ~ touched_condition(key, kind, keys, touched_relation)
    ).columns[0].values() -%}
    {{ return(days | list) }}
{%- endmacro %}

{#- One row per day in `days` (a list of literals), or one saying the build
    rewrote everything when `days` is none. Nothing for an empty list. -#}
{% macro record_partitions_rewritten(relation, day_column, days) -%}
    {%- set name = relation.schema ~ '.' ~ relation.identifier -%}
    {%- if days is none -%}
        {%- set values = ["(" ~ string_literal(name) ~ ", cast(null as " ~ type_date() ~ "), true)"] -%}
    {%- else -%}
        {%- set values = [] -%}
        {%- for day in days | reject('none') | unique | sort -%}
            {%- do values.append("(" ~ string_literal(name) ~ ", cast('" ~ day ~ "' as " ~ type_date() ~ "), false)") -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if values -%}
        {%- call statement('record_partitions_rewritten') -%}
            insert into {{ partitions_rewritten_relation() }}
            select rewritten.relation_name, rewritten.partition_date, rewritten.rewrote_all, {{ dbt.current_timestamp() }}
            from (values {{ values | join(', ') }}) as rewritten (relation_name, partition_date, rewrote_all)
        {%- endcall -%}
    {%- endif -%}
{%- endmacro %}

{#- The keys this build replaced, instead of those of the model's previous
    build: from `touched_relation` (the touched keys' table), or none for a
    full build (one row, rewrote_all). -#}
{% macro record_keys_rewritten(relation, touched_relation) -%}
    {%- set name = relation.schema ~ '.' ~ relation.identifier -%}
    {%- call statement('record_keys_rewritten') -%}
        delete from {{ keys_rewritten_relation() }}
        where relation_name = {{ string_literal(name) }}
        ;
        insert into {{ keys_rewritten_relation() }}
        select
            {{ string_literal(name) }},
            cast(null as {{ dbt.type_string() }}),
            {{ 'true' if touched_relation is none else 'false' }},
            {{ dbt.current_timestamp() }}
        {%- if touched_relation is not none %}
        union all
        select distinct
            {{ string_literal(name) }},
            cast(touched_keys.touched_key as {{ dbt.type_string() }}),
            false,
            {{ dbt.current_timestamp() }}
        from {{ touched_relation }} as touched_keys
        {%- endif %}
    {%- endcall -%}
{%- endmacro %}
