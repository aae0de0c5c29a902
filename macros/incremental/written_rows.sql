{#- What the newest build of a replace_touched model wrote, for data tests
    that check what a run wrote and nothing older (docs/incremental.md):
    a full build rewrote everything, so it is checked whole; an hour run
    checks the keys it replaced. Decided when the test is compiled, which
    dbt does right before running it (after its model in a dbt build). -#}

{#- The graph node of a model named by `model` (its name, or a relation:
    ref('...') in a test's argument also makes the test run after it). -#}
{% macro written_node(model) -%}
    {%- set name = model if model is string else model.identifier -%}
    {{ return(graph.nodes.get('model.convo_warehouse.' ~ name)) }}
{%- endmacro %}

{#- A condition on `column` (holding `model`'s touched key: its
    conversation_id, day or load_id) true for the rows the model's newest
    build that moved it replaced (audit.keys_rewritten). `model` is a name
    or a relation (written_node()). 1 = 1 (every row) when that build was
    full, when nothing is recorded (a model built before keys were
    recorded, any other materialization, Spark; the audit table created by
    this very invocation is not in dbt's relation cache yet, so the first
    run after an upgrade checks everything), and when dbt only parses. -#}
{% macro written_rows(model, column) -%}
    {%- set node = written_node(model) if execute else none -%}
    {%- if node is none or node.config.materialized != 'replace_touched' -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set keys_table = keys_rewritten_relation() -%}
    {%- if adapter.get_relation(keys_table.database, keys_table.schema, keys_table.identifier) is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set name = node.schema ~ '.' ~ (node.alias or node.name) -%}
    {%- set kind = touched_key_kind(node.config.get('touched_key') or 'conversation_id') -%}
    {%- set header = run_query(
        'select keys.rewrote_all from ' ~ keys_table ~ ' as keys where keys.relation_name = '
        ~ string_literal(name) ~ ' and keys.touched_key is null'
    ) -%}
    {%- if header.rows | length == 0 or header.rows[0][0] -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set written = '(select keys.touched_key from ' ~ keys_table ~ ' as keys where keys.relation_name = '
        ~ string_literal(name) ~ ' and keys.touched_key is not null)' -%}
    {%- if kind == 'conversation' -%}
        {{ return(column ~ ' in ' ~ written) }}
    {%- endif -%}
    {#- days and loads as literals, which DuckDB pushes into the scan -#}
    {%- set keys = run_query('select written.touched_key from ' ~ written ~ ' as written order by 1').columns[0].values() -%}
    {{ return(touched_condition(column, kind, keys | list, none)) }}
{%- endmacro %}

{#- written_rows() for the model stored in `relation` (the model under a
    generic test), its touched key qualified by `alias`: a condition true
    for the rows its newest build wrote, 1 = 1 when every row counts (a
    relation a `where` config already narrowed is checked as it is). -#}
{% macro written_rows_of(relation, alias) -%}
    {%- if not execute or relation is string -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set nodes = [] -%}
    {%- for candidate in graph.nodes.values()
        if candidate.resource_type == 'model'
        and candidate.schema == relation.schema
        and (candidate.alias or candidate.name) == relation.identifier -%}
        {%- do nodes.append(candidate) -%}
    {%- endfor -%}
    {%- if not nodes -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {{ return(written_rows(nodes[0].name, alias ~ '.' ~ (nodes[0].config.get('touched_key') or 'conversation_id'))) }}
{%- endmacro %}

{#- A condition on `column` (a date) true for the days the newest build of
    any of `models` (names or relations, written_node()) rewrote
    (audit.partitions_rewritten: the rows of its newest recorded build, old
    days of moved conversations included), for checks that compare models
    day by day. 1 = 1 when one of them rewrote everything or recorded
    nothing (see written_rows()). -#}
{% macro written_days(models, column) -%}
    {%- if not execute -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set rewritten = partitions_rewritten_relation() -%}
    {%- if adapter.get_relation(rewritten.database, rewritten.schema, rewritten.identifier) is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set selects = [] -%}
    {%- for model in models -%}
        {%- set node = written_node(model) -%}
        {%- if node is none or node.config.materialized != 'replace_touched' -%}
            {{ return('1 = 1') }}
        {%- endif -%}
        {%- set name = string_literal(node.schema ~ '.' ~ (node.alias or node.name)) -%}
        {%- do selects.append(
            'select newest.relation_name, newest.partition_date, newest.rewrote_all from ' ~ rewritten
            ~ ' as newest where newest.relation_name = ' ~ name ~ ' and newest.recorded_at = (select max(builds.recorded_at) from '
            ~ rewritten ~ ' as builds where builds.relation_name = ' ~ name ~ ')'
        ) -%}
    {%- endfor -%}
    {%- set rows = run_query(selects | join(' union all ')).rows -%}
    {%- set recorded = rows | map(attribute=0) | unique | list -%}
    {%- if recorded | length < models | length or rows | selectattr(2) | list -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set days = rows | map(attribute=1) | reject('none') | map('string') | unique | sort | list -%}
    {{ return(touched_condition(column, 'day', days, none)) }}
{%- endmacro %}
