{#- Whether a conversation is development traffic: its `environment`
    attribute says `development` (a conversation without one is not). The
    one rule behind exclude_development_traffic (patterns_in_scope) and
    metrics_by_conversation.is_development, which the dashboard, the CLI and
    the read API filter on. -#}
{% macro is_development_traffic(environment) -%}
    coalesce({{ environment }} = 'development', false)
{%- endmacro %}
