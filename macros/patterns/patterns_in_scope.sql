{% macro patterns_in_scope(environment) -%}
    {%- if var('exclude_development_traffic') -%}
        (not {{ is_development_traffic(environment) }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
