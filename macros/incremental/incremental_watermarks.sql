{#- What an incremental model has built from, kept outside the model (so a
    mart's bytes never depend on how it was built, incrementally or in one
    go): one row per model in audit.incremental_watermarks with
      loaded_through_load_id  the newest load run staged when it was built
      newest_event_at         the warehouse clock then (newest staged event of
                              any type: what inferred abandonment compares with)
      history_fingerprint     metrics_history_fingerprint() of the staged events,
                              or what the caller passes as `fingerprint_sql`
                              (stg_events: its seeds and vars)
    A model uses three pieces:
      pre_hook   forget_stale_incremental_build(): when the history it was
                 built from reads differently now (an alias added to the seed,
                 changed staging rules, changed vars), its rows and its
                 watermark are deleted, so this run rebuilds every key;
      previous_build_cte(): in an incremental run, the CTE `previous_build`
                 (one row; nulls when there is no usable watermark) followed
                 by a comma; nothing otherwise;
      post_hook  record_incremental_watermark(). -#}

{% macro incremental_watermarks_relation() %}
    {{ return(api.Relation.create(
        database=target.database, schema='audit', identifier='incremental_watermarks'
    )) }}
{% endmacro %}

{% macro previous_build_cte() %}
    {%- if is_incremental() %}
    {%- set watermarks = adapter.get_relation(
        database=target.database, schema='audit', identifier='incremental_watermarks'
    ) if execute else none %}
previous_build as (
    {%- if watermarks is not none %}
    select
        max(watermarks.loaded_through_load_id) as loaded_through_load_id,
        max(watermarks.newest_event_at) as newest_event_at
    from {{ watermarks }} as watermarks
    where watermarks.model_name = '{{ this.identifier }}'
    {%- else %}
    select
        cast(null as {{ dbt.type_bigint() }}) as loaded_through_load_id,
        cast(null as {{ dbt.type_timestamp() }}) as newest_event_at
    {%- endif %}
),
    {%- endif %}
{%- endmacro %}

{#- `events`: the staged events relation; stg_events passes `this` (a ref
    to itself would be a cycle). -#}
{% macro record_incremental_watermark(fingerprint_sql=none, events=none) %}
    {%- set watermarks = incremental_watermarks_relation() -%}
    create schema if not exists {{ watermarks.without_identifier() }};
    create table if not exists {{ watermarks }} (
        model_name {{ dbt.type_string() }},
        loaded_through_load_id {{ dbt.type_bigint() }},
        newest_event_at {{ dbt.type_timestamp() }},
        history_fingerprint {{ dbt.type_string() }}
    );
    delete from {{ watermarks }} where model_name = '{{ this.identifier }}';
    insert into {{ watermarks }}
    select
        '{{ this.identifier }}' as model_name,
        max(stg_events.load_id) as loaded_through_load_id,
        max(stg_events.event_at) as newest_event_at,
        {{ fingerprint_sql or metrics_history_fingerprint('stg_events') }} as history_fingerprint
    from {{ events if events is not none else ref('stg_events') }} as stg_events
{%- endmacro %}

{#- Pre-hook: the model's rows and watermark go when the staged history up to
    its watermark no longer reads as it did (fingerprint differs), or, with
    `fingerprint_sql` (a scalar subquery), when that value differs. -#}
{% macro forget_stale_incremental_build(fingerprint_sql=none) %}
    {%- set watermarks = adapter.get_relation(
        database=target.database, schema='audit', identifier='incremental_watermarks'
    ) if execute else none -%}
    {%- if watermarks is not none and is_incremental() -%}
        {%- set stale -%}
            exists (
                select 1
                from {{ watermarks }} as watermarks
                where
                    watermarks.model_name = '{{ this.identifier }}'
                    and watermarks.history_fingerprint <> {% if fingerprint_sql %}{{ fingerprint_sql }}{% else %}(
                        select {{ metrics_history_fingerprint('stg_events') }}
                        from {{ ref('stg_events') }} as stg_events
                        where stg_events.load_id <= watermarks.loaded_through_load_id
                    ){% endif %}
            )
        {%- endset -%}
        delete from {{ this }} where {{ stale }};
        delete from {{ watermarks }} where model_name = '{{ this.identifier }}' and {{ stale }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
