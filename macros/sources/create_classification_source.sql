{#- The stage classifier (a Python Dagster asset) writes
    classification.stage_classifications, classification.message_sentiment and
    classification.conversation_judgments. dbt reads them as sources, so they
    must exist, possibly empty, before any model selects from them. The same
    columns as lib/classify/store.py, sentiment.py and judge.py create (a test
    compares). One statement per call: some engines (Spark) take a single
    statement at a time. -#}
{% macro create_classification_source() %}
    {% do run_query('create schema if not exists classification') %}
    {% do run_query(
        'create table if not exists classification.stage_classifications ('
        ~ ' conversation_id ' ~ dbt.type_string() ~ ','
        ~ ' funnel_name ' ~ dbt.type_string() ~ ','
        ~ ' stage ' ~ dbt.type_string() ~ ','
        ~ ' reached boolean,'
        ~ ' confidence ' ~ type_double() ~ ','
        ~ ' classifier ' ~ dbt.type_string() ~ ','
        ~ ' model ' ~ dbt.type_string() ~ ','
        ~ ' prompt_version ' ~ dbt.type_string() ~ ','
        ~ ' transcript_hash ' ~ dbt.type_string() ~ ','
        ~ ' classified_at ' ~ dbt.type_timestamp() ~ ','
        ~ ' fallback_reason ' ~ dbt.type_string()
        ~ ')'
    ) %}
    {% do run_query(
        'create table if not exists classification.message_sentiment ('
        ~ ' event_id ' ~ dbt.type_string() ~ ','
        ~ ' conversation_id ' ~ dbt.type_string() ~ ','
        ~ ' event_at ' ~ dbt.type_timestamp() ~ ','
        ~ ' sentiment ' ~ type_double() ~ ','
        ~ ' sentiment_source ' ~ dbt.type_string() ~ ','
        ~ ' sentiment_model ' ~ dbt.type_string() ~ ','
        ~ ' scored_at ' ~ dbt.type_timestamp()
        ~ ')'
    ) %}
    {%- if target.type == 'duckdb' %}
        {#- DuckDB warehouses scored before sentiment_model existed (their rows are re-scored by the next run) -#}
        {% do run_query(
            'alter table classification.message_sentiment add column if not exists sentiment_model '
            ~ dbt.type_string()
        ) %}
    {%- endif %}
    {% do run_query(
        'create table if not exists classification.conversation_judgments ('
        ~ ' conversation_id ' ~ dbt.type_string() ~ ','
        ~ ' transcript_hash ' ~ dbt.type_string() ~ ','
        ~ ' resolution ' ~ dbt.type_string() ~ ','
        ~ ' user_frustration ' ~ dbt.type_string() ~ ','
        ~ ' reason ' ~ dbt.type_string() ~ ','
        ~ ' model ' ~ dbt.type_string() ~ ','
        ~ ' prompt_version ' ~ dbt.type_string() ~ ','
        ~ ' judged_at ' ~ dbt.type_timestamp()
        ~ ')'
    ) %}
{% endmacro %}
