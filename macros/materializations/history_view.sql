{#- history_view: a view over the stored events (stg_events, stg_loads,
    rejected_events: base_events_parsed holds the one copy of each event,
    docs/staging.md).

    A view has no rows to keep up to date, but a reader outside dbt needs
    to know when it reads every row anew: the classifier's transcripts are
    prepared only for the conversations with new events unless the way
    stg_events maps the history changed (an alias added to a seed it maps
    through, a var). So the build records the view's build fingerprint in
    audit.incremental_builds, as replace_touched records its tables'
    (build_fingerprint(): the compiled SQL, and the upstream models', seeds'
    and vars' state); it holds no position in the history, and an unchanged
    fingerprint records nothing.

    The view's references name no catalog: DuckDB stores the catalog a
    view names ("warehouse"."staging"...), so a view that named it would
    fail in a warehouse file copied or attached under another name; without
    one, a view reads from its own catalog. -#}
{% materialization history_view, adapter='duckdb' %}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set own_catalog = adapter.quote(target_relation.database) ~ '.' -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- if existing_relation is not none and not existing_relation.is_view -%}
        {%- do adapter.drop_relation(existing_relation) -%}
    {%- endif -%}
    {%- call statement('main') -%}
        create or replace view {{ target_relation }} as (
            {{ sql | replace(own_catalog, '') }}
        )
    {%- endcall -%}
    {%- set latest = latest_builds() -%}
    {%- do record_build(
        this.identifier,
        {'loaded_through_load_id': none, 'newest_event_at': none, 'classified_through': none},
        build_fingerprint(sql, latest),
        latest.get(this.identifier),
    ) -%}
    {%- do persist_docs(target_relation, model) -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- do adapter.commit() -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{#- Spark: a plain view. Its builds are full each run, so nothing reads a
    recorded fingerprint there (the classifier prepares every transcript). -#}
{% materialization history_view, default %}
    {{ return(create_or_replace_view()) }}
{% endmaterialization %}
