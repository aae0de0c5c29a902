{#- The stage classifier (a Python Dagster asset) writes
    classification.stage_classifications. dbt reads it as a source, so it must
    exist, possibly empty, before any model selects from it. Its columns and
    types are read from the source's YAML (the `data_type` of each column of
    models/staging/classification/_classification__sources.yml), the one
    definition the Python writer (lib/classify/store.py) reads too. -#}
{% macro create_classification_source() %}
    {%- if execute %}
        {%- set sources = graph.sources.values()
            | selectattr('source_name', 'equalto', 'classification')
            | selectattr('name', 'equalto', 'stage_classifications')
            | list %}
        {%- set types = {
            'string': dbt.type_string(),
            'boolean': dbt.type_boolean(),
            'double': funnel_type_double(),
            'timestamp': dbt.type_timestamp(),
        } %}
        {%- set columns = sources[0].columns.values() | list %}
        {%- for column in columns if column.data_type not in types %}
            {{ exceptions.raise_compiler_error(
                "source classification.stage_classifications, column " ~ column.name
                ~ ": data_type '" ~ column.data_type ~ "' is not one of " ~ (types.keys() | join(', '))
            ) }}
        {%- endfor %}
    create schema if not exists classification;
    create table if not exists classification.stage_classifications (
        {%- for column in columns %}
        {{ column.name }} {{ types[column.data_type] }}{{ ',' if not loop.last }}
        {%- endfor %}
    );
    {#- tables created before a column existed get it -#}
        {%- for column in columns %}
    alter table classification.stage_classifications
        add column if not exists {{ column.name }} {{ types[column.data_type] }};
        {%- endfor %}
    {%- endif %}
{% endmacro %}
