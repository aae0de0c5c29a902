{#- A condition on a conversation's `environment`: it belongs to the
    population of the patterns marts. Every environment counts, unless the
    var exclude_development_traffic is true: then `development` is left out
    (null and every other environment stay). The only place that var is
    read. -#}
{% macro patterns_in_scope(environment) -%}
    {%- if var('exclude_development_traffic') -%}
        ({{ environment }} is null or {{ environment }} != 'development')
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
