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
