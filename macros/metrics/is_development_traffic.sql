{% macro is_development_traffic(environment) -%}
    coalesce({{ environment }} = 'development', false)
{%- endmacro %}
