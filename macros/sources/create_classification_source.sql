{#- The stage classifier (a Python Dagster asset) writes
    classification.stage_classifications, classification.message_sentiment,
    classification.message_embeddings and classification.conversation_judgments. dbt reads them as sources, so they
    must exist, possibly empty, before any model selects from them.
    stage_classifications is built from its one definition, the `data_type` of
    each column in models/staging/classification/_classification__sources.yml,
    which lib/classify/store.py reads too (tests/classification/test_classification_table.py
    proves the two tables are identical). message_sentiment,
    message_embeddings and conversation_judgments have the same columns as
    lib/classify/sentiment.py, embeddings.py and judge.py create. One statement per call: some engines (Spark) take a
    single statement at a time. -#}
{% macro create_classification_source() %}
    {%- if execute %}
        {%- set sources = graph.sources.values()
            | selectattr('source_name', 'equalto', 'classification')
            | selectattr('name', 'equalto', 'stage_classifications')
            | list %}
        {%- set types = {
            'string': dbt.type_string(),
            'boolean': dbt.type_boolean(),
            'double': type_double(),
            'timestamp': dbt.type_timestamp(),
        } %}
        {%- set columns = sources[0].columns.values() | list %}
        {%- set definitions = [] %}
        {%- for column in columns %}
            {%- if column.data_type not in types %}
                {{ exceptions.raise_compiler_error(
                    "source classification.stage_classifications, column " ~ column.name
                    ~ ": data_type '" ~ column.data_type ~ "' is not one of " ~ (types.keys() | join(', '))
                ) }}
            {%- endif %}
            {%- do definitions.append(column.name ~ ' ' ~ types[column.data_type]) %}
        {%- endfor %}
        {% do run_query('create schema if not exists classification') %}
        {% do run_query(
            'create table if not exists classification.stage_classifications ('
            ~ definitions | join(', ') ~ ')'
        ) %}
        {%- if target.type == 'duckdb' %}
            {#- DuckDB warehouses created before a column existed get it -#}
            {%- for definition in definitions %}
                {% do run_query(
                    'alter table classification.stage_classifications add column if not exists ' ~ definition
                ) %}
            {%- endfor %}
        {%- endif %}
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
            'create table if not exists classification.message_embeddings ('
            ~ ' event_id ' ~ dbt.type_string() ~ ','
            ~ ' conversation_id ' ~ dbt.type_string() ~ ','
            ~ ' event_at ' ~ dbt.type_timestamp() ~ ','
            ~ ' content_hash ' ~ dbt.type_string() ~ ','
            ~ ' embedding ' ~ type_float_list() ~ ','
            ~ ' embedding_model ' ~ dbt.type_string() ~ ','
            ~ ' embedded_at ' ~ dbt.type_timestamp()
            ~ ')'
        ) %}
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
    {%- endif %}
{% endmacro %}
