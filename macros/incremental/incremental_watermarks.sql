{#- What an incremental model has built from, kept outside the model (so a
    mart's bytes never depend on how it was built, incrementally or in one
    go). audit.incremental_watermarks gets one row per build of such a model
    (append only, no UPDATE or DELETE, which Spark tables without Delta lack);
    the newest row of a model counts:
      loaded_through_load_id  the newest load run staged when it was built
      newest_event_at         the warehouse clock then (newest staged event of
                              any type: what inferred abandonment compares with)
      history_fingerprint     metrics_history_fingerprint() of the staged events,
                              or what the caller passes as `fingerprint_sql`
                              (stg_events: its seeds and vars)
      recorded_at             when the row was written
      classified_through      for models fed by the classifier step: the
                              newest time it had written anything then
                              (classified_through_sql()); null otherwise
    A model uses three pieces:
      pre_hook   forget_stale_incremental_build(): when the history it was
                 built from reads differently now (an alias added to the seed,
                 changed staging rules, changed vars), its rows are removed and
                 an empty watermark is recorded, so this run rebuilds every key;
      previous_build_cte(): in an incremental run, the CTE `previous_build`
                 (one row; nulls when there is no usable watermark) followed
                 by a comma; nothing otherwise;
      post_hook  record_incremental_watermark(). -#}

{#- target.get: Spark targets have no database; the relation is the same in
    a model, a test and on-run-start. -#}
{% macro incremental_watermarks_relation() %}
    {{ return(api.Relation.create(
        database=target.get('database'), schema='audit', identifier='incremental_watermarks'
    )) }}
{% endmacro %}

{% macro existing_incremental_watermarks() %}
    {%- set watermarks = incremental_watermarks_relation() -%}
    {{ return(adapter.get_relation(
        database=watermarks.database, schema=watermarks.schema, identifier=watermarks.identifier
    ) if execute else none) }}
{% endmacro %}

{#- The newest watermark row of the current model, as a subquery body. -#}
{% macro latest_incremental_watermark(watermarks) %}
    select
        max(watermarks.loaded_through_load_id) as loaded_through_load_id,
        max(watermarks.newest_event_at) as newest_event_at,
        max(watermarks.history_fingerprint) as history_fingerprint,
        max(watermarks.classified_through) as classified_through
    from {{ watermarks }} as watermarks
    where
        watermarks.model_name = '{{ this.identifier }}'
        and watermarks.recorded_at = (
            select max(newest.recorded_at)
            from {{ watermarks }} as newest
            where newest.model_name = '{{ this.identifier }}'
        )
{% endmacro %}

{% macro previous_build_cte() %}
    {%- if is_incremental() %}
    {%- set watermarks = existing_incremental_watermarks() %}
previous_build as (
    {%- if watermarks is not none %}
    {{ latest_incremental_watermark(watermarks) }}
    {%- else %}
    select
        cast(null as {{ dbt.type_bigint() }}) as loaded_through_load_id,
        cast(null as {{ dbt.type_timestamp() }}) as newest_event_at,
        cast(null as {{ dbt.type_timestamp() }}) as classified_through
    {%- endif %}
),
    {%- endif %}
{%- endmacro %}

{#- on-run-start: audit.incremental_watermarks with its columns, created if
    missing, and given classified_through if it predates that column (so
    every hook and compile-time read finds the same table). One statement per
    call: Spark takes a single statement at a time. -#}
{% macro create_incremental_watermarks() %}
    {%- if execute %}
        {%- set watermarks = incremental_watermarks_relation() %}
        {%- set columns = [
            ('model_name', dbt.type_string()),
            ('loaded_through_load_id', dbt.type_bigint()),
            ('newest_event_at', dbt.type_timestamp()),
            ('history_fingerprint', dbt.type_string()),
            ('recorded_at', dbt.type_timestamp()),
            ('classified_through', dbt.type_timestamp()),
        ] %}
        {%- do run_query("create schema if not exists " ~ watermarks.without_identifier()) %}
        {%- set existing = existing_incremental_watermarks() %}
        {%- if existing is none %}
            {%- set definitions = [] %}
            {%- for name, data_type in columns %}
                {%- do definitions.append(name ~ " " ~ data_type) %}
            {%- endfor %}
            {%- do run_query("create table " ~ watermarks ~ " (" ~ definitions | join(", ") ~ ")") %}
        {%- else %}
            {%- set present = adapter.get_columns_in_relation(existing) | map(attribute='name') | map('lower') | list %}
            {%- set missing = [] %}
            {%- for name, data_type in columns if name not in present %}
                {%- do missing.append(api.Column.create(name, data_type)) %}
            {%- endfor %}
            {%- if missing %}
                {%- do alter_relation_add_remove_columns(existing, missing, none) %}
            {%- endif %}
        {%- endif %}
    {%- endif %}
    select 1
{%- endmacro %}

{#- The newest time the classifier step wrote anything (a stage
    classification, a sentiment, a judgment), as a scalar subquery: what a
    model fed by it has seen (conversations_to_refresh_cte's
    `newly_classified`). -#}
{% macro classified_through_sql() %}
    (
        select max(written.written_at)
        from (
            select max(classified_at) as written_at from {{ ref('stg_stage_classifications') }}
            union all
            select max(scored_at) as written_at from {{ ref('stg_message_sentiment') }}
            union all
            select max(judged_at) as written_at from {{ ref('stg_conversation_judgments') }}
        ) as written
    )
{%- endmacro %}

{#- Post-hook; the hook's own statement is the insert. `events`: the staged
    events relation; stg_events passes `this` (a ref to itself would be a
    cycle). `classified`: the model reads what the classifier step writes
    (conversations_to_refresh_cte's `newly_classified`), so the watermark
    keeps how far it has seen that too. -#}
{% macro record_incremental_watermark(fingerprint_sql=none, events=none, seeds=[], vars=[], classified=false) %}
    {%- set watermarks = incremental_watermarks_relation() -%}
    {#- by position, in create_incremental_watermarks()'s column order (an
        older table gets classified_through added last, the same order) -#}
    insert into {{ watermarks }}
    select
        new_watermark.model_name,
        new_watermark.loaded_through_load_id,
        new_watermark.newest_event_at,
        new_watermark.history_fingerprint,
        new_watermark.recorded_at,
        new_watermark.classified_through
    from (
        select
            '{{ this.identifier }}' as model_name,
            staged.loaded_through_load_id,
            staged.newest_event_at,
            {{ fingerprint_sql or incremental_history_fingerprint(ref('stg_events'), seeds, vars=vars) }} as history_fingerprint,
            {{ dbt.current_timestamp() }} as recorded_at,
            staged.classified_through
        from ({{ staged_watermark(events, classified) }}) as staged
    ) as new_watermark
    -- a build that moved nothing records nothing: a re-run changes no byte
    where not exists (
        select 1
        from ({{ latest_incremental_watermark(watermarks) }}) as latest
        where
            {{ same_watermark('latest', 'new_watermark') }}
            and latest.history_fingerprint = new_watermark.history_fingerprint
    )
{%- endmacro %}

{#- The watermark of the history as it is now, as a query (one row):
    loaded_through_load_id and newest_event_at of `events` (default
    ref('stg_events')), and with `classified` classified_through_sql(), else
    null. -#}
{% macro staged_watermark(events=none, classified=false) %}
    select
        max(stg_events.load_id) as loaded_through_load_id,
        max(stg_events.event_at) as newest_event_at,
        {{ classified_through_sql() if classified else 'cast(null as ' ~ dbt.type_timestamp() ~ ')' }}
            as classified_through
    from {{ events if events is not none else ref('stg_events') }} as stg_events
{%- endmacro %}

{#- Two watermark rows (aliases) name the same history position: the same
    newest load, clock and classifier output (nulls equal). A changed
    fingerprint shows as an empty watermark forget_stale_incremental_build()
    recorded, so it differs too. -#}
{% macro same_watermark(left, right) %}
    {{ left }}.loaded_through_load_id = {{ right }}.loaded_through_load_id
    and {{ left }}.newest_event_at = {{ right }}.newest_event_at
    and (
        {{ left }}.classified_through = {{ right }}.classified_through
        or ({{ left }}.classified_through is null and {{ right }}.classified_through is null)
    )
{%- endmacro %}

{#- A condition, for post-hooks before record_incremental_watermark(): this
    build moves the model's watermark (its newest row is not at the history's
    position now), so it is a build that changed something. -#}
{% macro build_moves_watermark(classified=false) %}
    not exists (
        select 1
        from ({{ latest_incremental_watermark(incremental_watermarks_relation()) }}) as latest
        cross join ({{ staged_watermark(classified=classified) }}) as staged
        where {{ same_watermark('latest', 'staged') }}
    )
{%- endmacro %}

{#- Pre-hook: when the staged history up to the model's watermark no longer
    reads as it did (its fingerprint differs), or, with `fingerprint_sql` (a
    scalar subquery), when that value differs: record an empty watermark and
    empty the model, so this run builds every key again. `seeds`: relations
    whose rows also count, `vars`: names of vars whose values also count
    (incremental_history_fingerprint); pass the same to
    record_incremental_watermark(). -#}
{% macro forget_stale_incremental_build(fingerprint_sql=none, seeds=[], vars=[]) %}
    {%- if incremental_build_is_stale(fingerprint_sql, seeds, vars) -%}
        {%- do run_query(
            "insert into " ~ incremental_watermarks_relation() ~ " select '" ~ this.identifier ~ "', null, null, null, "
            ~ dbt.current_timestamp() ~ ", null"
        ) -%}
        truncate table {{ this }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Whether this incremental build of the current model must rebuild every
    key: the staged history up to its watermark no longer reads as it did
    (see forget_stale_incremental_build(), which acts on it, and
    days_to_refresh_literals(), which asks before the pre-hook runs). False
    on a full build and without a usable watermark (every key is built
    anyway). -#}
{% macro incremental_build_is_stale(fingerprint_sql=none, seeds=[], vars=[]) %}
    {%- set watermarks = existing_incremental_watermarks() -%}
    {%- if watermarks is none or not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set latest = run_query(latest_incremental_watermark(watermarks)) -%}
    {%- set loaded_through = latest.columns[0].values()[0] -%}
    {%- set stored = latest.columns[2].values()[0] -%}
    {%- if stored is none -%}
        {#- no watermark, or an empty one: this run builds every key anyway -#}
        {{ return(false) }}
    {%- endif -%}
    {%- set current = run_query(
        "select " ~ (fingerprint_sql or incremental_history_fingerprint(
            ref('stg_events'), seeds, loaded_through if loaded_through is not none else 'null', vars
        ))
    ).columns[0].values()[0] -%}
    {{ return(current != stored) }}
{%- endmacro %}

{#- The history fingerprint a model's watermark stores (a scalar SQL
    expression): metrics_history_fingerprint() of the staged events `events`
    (of the loads up to `loaded_through` if given), followed by
    relation_fingerprint() of each of
    `seeds` (relations the model reads besides the staged history, e.g. the
    experiments seed) and the values of the vars named in `vars` (those the
    model reads that metrics_history_fingerprint() does not cover), so a
    changed seed row or var also rebuilds every key. -#}
{% macro incremental_history_fingerprint(events, seeds=[], loaded_through=none, vars=[]) %}
    {%- set parts = [metrics_history_fingerprint(events, loaded_through)] -%}
    {%- for seed in seeds -%}
        {%- do parts.append("'|'") -%}
        {%- do parts.append(relation_fingerprint(seed)) -%}
    {%- endfor -%}
    {%- for name in vars -%}
        {%- do parts.append(string_literal("|" ~ name ~ "=" ~ (var(name, none) | string))) -%}
    {%- endfor -%}
    {{ dbt.concat(parts) if parts | length > 1 else parts[0] }}
{%- endmacro %}
