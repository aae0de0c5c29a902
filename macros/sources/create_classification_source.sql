{#- The stage classifier (a Python Dagster asset) writes
    classification.stage_classifications. dbt reads it as a source, so it must
    exist, possibly empty, before any model selects from it. One statement per
    call: some engines (Spark) take a single statement at a time. -#}
{% macro create_classification_source() %}
    {% do run_query('create schema if not exists classification') %}
    {% do run_query(
        'create table if not exists classification.stage_classifications ('
        ~ ' conversation_id ' ~ dbt.type_string() ~ ','
        ~ ' funnel_name ' ~ dbt.type_string() ~ ','
        ~ ' stage ' ~ dbt.type_string() ~ ','
        ~ ' reached boolean,'
        ~ ' confidence ' ~ dbt.type_float() ~ ','
        ~ ' classifier ' ~ dbt.type_string() ~ ','
        ~ ' model ' ~ dbt.type_string() ~ ','
        ~ ' prompt_version ' ~ dbt.type_string() ~ ','
        ~ ' transcript_hash ' ~ dbt.type_string() ~ ','
        ~ ' classified_at ' ~ dbt.type_timestamp() ~ ','
        ~ ' fallback_reason ' ~ dbt.type_string()
        ~ ')'
    ) %}
{% endmacro %}
