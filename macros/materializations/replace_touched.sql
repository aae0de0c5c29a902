{#- replace_touched: an incremental table whose rows a run replaces key by
    key, for the keys the new data touched (docs/incremental.md).

    config:
      touched_key   conversation_id (default): every row of a touched
                    conversation is replaced; load_id: the rows of the load
                    runs loaded since the previous build; any other column
                    is a day (a date column): every row of a touched day,
                    the days of the touched conversations.
      touched_by    what touches a conversation besides its new events
                    (always counted): abandonment_clock, conversion_window,
                    classifier_output (touched_conversations_query()).
      day_column    the date (or timestamp: its day) column whose days
                    the build records as rewritten
                    (audit.partitions_rewritten, read by the snapshot
                    publisher, which partitions by the same day); default
                    the day key, else conversation_date.
      unique_key    the grain: checked on the rows a build writes (a
                    conversation's or day's rows are written together, so a
                    duplicate can only lie among them).
      compared_days_back
                    (day key) the days before each day the model compares
                    it with, e.g. [7] for week over week: a touched day also
                    touches the days that many days after it, and the body
                    reads the earlier days with touched(column, 'day',
                    days_before=7).

    The body marks where its rows are narrowed to the touched keys with
    touched(column, kind); a full build leaves every mark true. A build is
    full when the table does not exist, on --full-refresh, without a
    watermark, and when the model's build fingerprint changed (its compiled
    SQL, an upstream model's, an upstream seed's content:
    build_fingerprint()). The keys a build replaced are recorded in
    audit.keys_rewritten, where the data tests of the model read what the
    run wrote (written_rows()). Everything below runs in one transaction. -#}
{% materialization replace_touched, default %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set key = config.get('touched_key', 'conversation_id') -%}
    {%- set kind = touched_key_kind(key) -%}
    {%- set touched_by = config.get('touched_by', []) -%}
    {%- set day_column = config.get('day_column') or (key if kind == 'day' else 'conversation_date') -%}
    {%- set unique_key = config.get('unique_key') -%}
    {%- set days_back = config.get('compared_days_back') or [] -%}

    {%- do check_touched_upstream(kind, touched_by) -%}
    {%- set latest = latest_builds() -%}
    {%- set fingerprint = build_fingerprint(sql, latest) -%}
    {%- set previous = latest.get(this.identifier) -%}
    {%- set full_build = existing_relation is none
        or existing_relation.is_view
        or should_full_refresh()
        or previous is none
        or previous.fingerprint != fingerprint -%}
    {%- set position = history_position(kind, touched_by, latest) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if full_build -%}
        {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
        {%- set backup_relation = make_backup_relation(target_relation, 'table') -%}
        {%- do drop_relation_if_exists(load_cached_relation(intermediate_relation)) -%}
        {%- do drop_relation_if_exists(load_cached_relation(backup_relation)) -%}
        {%- call statement('main') -%}
            {{ get_create_table_as_sql(False, intermediate_relation, touched_filled(sql, kind, none)) }}
        {%- endcall -%}
        {%- do check_unique_key(intermediate_relation, unique_key, none) -%}
        {%- if existing_relation is not none and existing_relation.is_view -%}
            {%- do adapter.drop_relation(existing_relation) -%}
        {%- elif existing_relation is not none -%}
            {%- do adapter.rename_relation(existing_relation, backup_relation) -%}
        {%- endif -%}
        {%- do adapter.rename_relation(intermediate_relation, target_relation) -%}
        {%- do record_partitions_rewritten(target_relation, day_column, none) -%}
        {%- do record_keys_rewritten(target_relation, none) -%}
    {%- else -%}
        {%- set touched_relation = touched_keys_relation() -%}
        {%- call statement('touched_keys') -%}
            {{ create_touched_keys(touched_relation, kind, key, touched_by, previous, position, days_back) }}
        {%- endcall -%}
        {%- set keys = touched_key_literals(touched_relation, kind) -%}
        {%- set columns = adapter.get_columns_in_relation(existing_relation) | map(attribute='quoted') | join(', ') -%}
        {%- set rewritten_days = days_of_touched_rows(target_relation, key, kind, day_column, keys, touched_relation) -%}
        {%- call statement('main') -%}
            delete from {{ target_relation }}
            where {{ touched_condition(key, kind, keys, touched_relation) }}
            ;
            insert into {{ target_relation }} ({{ columns }})
            select {{ columns }}
            from (
                {{ touched_filled(sql, kind, {'keys': keys, 'relation': touched_relation}) }}
            ) as touched_rows
        {%- endcall -%}
        {%- do check_unique_key(target_relation, unique_key, touched_condition(key, kind, keys, touched_relation)) -%}
        {%- do rewritten_days.extend(days_of_touched_rows(target_relation, key, kind, day_column, keys, touched_relation)) -%}
        {%- do record_partitions_rewritten(target_relation, day_column, rewritten_days) -%}
    {%- endif -%}
    {#- the staged events' model records the clock it now holds, before
        anything asks whether the build moved it -#}
    {%- if model.unique_id == staged_events_model_id() -%}
        {%- do position.update({'newest_event_at': staged_events_clock(
            target_relation, previous, none if full_build else keys
        )}) -%}
    {%- endif -%}
    {%- if not full_build -%}
        {%- if build_moved(previous, position, fingerprint) -%}
            {%- do record_keys_rewritten(target_relation, touched_relation) -%}
        {%- endif -%}
        {%- do drop_relation_if_exists(touched_relation) -%}
    {%- endif -%}
    {%- do record_build(this.identifier, position, fingerprint, previous) -%}

    {%- do persist_docs(target_relation, model) -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- do adapter.commit() -%}
    {%- if full_build and existing_relation is not none and not existing_relation.is_view -%}
        {%- do adapter.drop_relation(make_backup_relation(target_relation, 'table')) -%}
    {%- endif -%}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{#- Spark: the offline setup writes Parquet tables, which have no DELETE, so
    a replace_touched model is a table rebuilt in full each run (its marks
    stay true); a Delta or Iceberg table format would allow the incremental
    path (docs/spark.md). -#}
{% materialization replace_touched, adapter='spark' %}
    {{ return(materialization_table_spark()) }}
{% endmaterialization %}
