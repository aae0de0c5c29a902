{#- The config() of a model of the funnel chain fed by the stage classifier
    (stage reaches, combined and sequenced stages, funnel progress,
    fct_conversation_stages): replaced conversation by conversation
    (conversation_replaced_config), rebuilt in full when the funnel seed, the
    marker rules or the conversion window change. `refresh`: the arguments
    of conversations_to_refresh_cte() the model's body uses. -#}
{% macro funnel_chain_config(refresh) %}
    {{ return(conversation_replaced_config(
        refresh,
        seeds=['stg_seeds__funnel_stages'],
        vars=['funnel_markers', 'funnel_conversion_window_hours'],
    )) }}
{% endmacro %}
