{#- The build fingerprint of the current replace_touched model: a hash of
    what its rows are computed from besides the event history. A build whose
    fingerprint differs from the one its table was built with rebuilds every
    key, so nothing is listed by hand:
      - its own compiled SQL: the vars and macros it uses, as rendered, and
        every ephemeral model it inlines;
      - for each upstream model built by replace_touched: the fingerprint
        that model recorded (so a change anywhere upstream reaches it);
      - for each other upstream model (a table, a view): its file's
        checksum and the values of the vars its code names, and its own
        upstream, the same way;
      - for each upstream seed: a hash of its rows as loaded (what the
        models read; a seed file edited but not loaded yet counts when it
        is loaded).
    `latest` is latest_builds(). -#}
{% macro build_fingerprint(sql, latest) -%}
    {%- set parts = ['sql ' ~ local_md5(sql)] -%}
    {%- set pending = model.depends_on.nodes | list -%}
    {%- set seen = [] -%}
    {%- set seeds = [] -%}
    {#- a breadth-first walk: the loop also visits what it appends -#}
    {%- for unique_id in pending if unique_id not in seen -%}
        {%- do seen.append(unique_id) -%}
        {%- set node = graph.nodes.get(unique_id) -%}
        {%- if node is none -%}
            {#- a source: raw history, counted by the watermark -#}
        {%- elif node.resource_type == 'seed' -%}
            {%- do seeds.append(node) -%}
        {%- elif node.config.materialized == 'replace_touched' -%}
            {%- set recorded = latest.get(node.alias or node.name) -%}
            {%- do parts.append(unique_id ~ ' ' ~ (recorded.fingerprint if recorded else 'unbuilt')) -%}
        {%- else -%}
            {%- do parts.append(unique_id ~ ' ' ~ node.checksum.checksum ~ ' ' ~ code_vars(node.raw_code)) -%}
            {%- do pending.extend(node.depends_on.nodes) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if seeds -%}
        {%- set hashes = [] -%}
        {%- for seed in seeds -%}
            {%- do hashes.append(relation_content_hash(api.Relation.create(
                database=seed.database, schema=seed.schema, identifier=seed.alias or seed.name
            ))) -%}
        {%- endfor -%}
        {%- set row = run_query('select ' ~ hashes | join(', ')).rows[0] -%}
        {%- for seed in seeds -%}
            {%- do parts.append(seed.unique_id ~ ' ' ~ row[loop.index0]) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(local_md5(parts | sort | join('\n'))) }}
{%- endmacro %}

{#- `name=value` of every var a piece of code names (var('name')), sorted. -#}
{% macro code_vars(code) -%}
    {%- set named = modules.re.findall("var\\(\\s*['\"]([A-Za-z0-9_]+)['\"]", code) | unique | sort -%}
    {%- set values = [] -%}
    {%- for name in named -%}
        {%- do values.append(name ~ '=' ~ (var(name, none) | string)) -%}
    {%- endfor -%}
    {{ return(values | join(',')) }}
{%- endmacro %}

{#- A scalar subquery: a hash of every row of `relation`, whatever their
    order (for small tables: the seeds). -#}
{% macro relation_content_hash(relation) -%}
    {{ return(adapter.dispatch('relation_content_hash', 'convo_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__relation_content_hash(relation) -%}
    (
        select md5(concat_ws('|', sort_array(collect_list(to_json(struct(*))))))
        from {{ relation }}
    )
{%- endmacro %}

{% macro duckdb__relation_content_hash(relation) -%}
    (
        select md5(coalesce(string_agg(cast(hashed as varchar), '|' order by cast(hashed as varchar)), ''))
        from {{ relation }} as hashed
    )
{%- endmacro %}
