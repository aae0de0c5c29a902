{#- Selects a user-editable seed with every column it may have: each required
    column as it is, each optional column from the seed when the user's CSV
    has it (an empty cell taking the default), else its default. The seed's
    actual columns are read from the warehouse
    (adapter.get_columns_in_relation), so a seed reduced to its required
    columns builds, and so does everything downstream.

    required_columns: {name: type}; optional_columns: {name: [type, default
    SQL]}; types are dbt.type_* results. -#}
{% macro seed_with_defaults(seed_name, required_columns, optional_columns) -%}
    {%- set seed_relation = ref(seed_name) -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(seed_relation) -%}
            {%- do present.append(column.name | lower) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set selected = [] -%}
    {%- for name, data_type in required_columns.items() -%}
        {%- do selected.append("cast(" ~ name ~ " as " ~ data_type ~ ") as " ~ name) -%}
    {%- endfor -%}
    {%- for name, type_and_default in optional_columns.items() -%}
        {%- set data_type, default = type_and_default -%}
        {%- if name in present -%}
            {%- do selected.append(
                "coalesce(cast(" ~ name ~ " as " ~ data_type ~ "), " ~ default ~ ") as " ~ name
            ) -%}
        {%- else -%}
            {%- do selected.append("cast(" ~ default ~ " as " ~ data_type ~ ") as " ~ name) -%}
        {%- endif -%}
    {%- endfor %}
    select
        {{ selected | join(",\n        ") }}
    from {{ seed_relation }}
{%- endmacro %}
