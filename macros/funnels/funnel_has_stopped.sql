{#- A conversation stopped in a funnel (a row of funnel_dropoffs; counted in
    funnel_summary's dropped_here / window_open_here): it did not reach the
    funnel's last stage, and its outcome is not in_progress. `progress` is a
    relation with int_conversation_funnels_progressed's has_reached_last_stage,
    `conversations` one with fct_conversations's outcome. -#}
{% macro funnel_has_stopped(progress, conversations) -%}
    not {{ progress }}.has_reached_last_stage
    and {{ conversations }}.outcome != 'in_progress'
{%- endmacro %}
