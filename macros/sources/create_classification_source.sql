{% macro create_classification_source() %}
    {%- if execute %}
        {%- set types = {
            'string': dbt.type_string(),
            'boolean': dbt.type_boolean(),
            'double': type_double(),
            'timestamp': dbt.type_timestamp(),
            'float_list': type_float_list(),
        } %}
        {% do run_query('create schema if not exists classification') %}
        {#- DuckDB warehouses created before a column existed get it (messages scored before
            sentiment_model are scored again by the next run) -#}
        {%- set existing = {} %}
        {%- if target.type == 'duckdb' %}
            {%- for table_name, column_name in run_query(
                "select table_name, column_name from information_schema.columns where table_schema = 'classification'"
            ).rows %}
                {%- do existing.update({table_name: existing.get(table_name, []) + [column_name]}) %}
            {%- endfor %}
        {%- endif %}
        {%- for source in graph.sources.values() | selectattr('source_name', 'equalto', 'classification') %}
            {%- set definitions = [] %}
            {%- for column in source.columns.values() %}
                {%- if column.data_type not in types %}
                    {{ exceptions.raise_compiler_error(
                        "source classification." ~ source.name ~ ", column " ~ column.name ~ ": data_type '"
                        ~ column.data_type ~ "' is not one of " ~ (types.keys() | join(', '))
                    ) }}
                {%- endif %}
                {%- do definitions.append(column.name ~ ' ' ~ types[column.data_type]) %}
                {%- if source.name in existing and column.name not in existing[source.name] %}
                    {% do run_query(
                        'alter table classification.' ~ source.name ~ ' add column ' ~ definitions[-1]
                    ) %}
                {%- endif %}
            {%- endfor %}
            {% do run_query(
                'create table if not exists classification.' ~ source.name ~ ' (' ~ definitions | join(', ') ~ ')'
            ) %}
        {%- endfor %}
    {%- endif %}
{% endmacro %}
