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
