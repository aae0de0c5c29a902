{#- A condition on a conversation's `environment`: it belongs to the
    population of the patterns marts. Every environment counts, unless the
    var exclude_development_traffic is true: then `development` is left out
    (null and every other environment stay; the rule is
    is_development_traffic, which the dashboard's production filter uses
    too). The only place that var is read. -#}
{% macro patterns_in_scope(environment) -%}
    {%- if var('exclude_development_traffic') -%}
        (not {{ is_development_traffic(environment) }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
