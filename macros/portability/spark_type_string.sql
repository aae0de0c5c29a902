{% macro spark__type_string() -%}
    string
{%- endmacro %}
