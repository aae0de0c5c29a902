{% macro funnel_has_stopped(progress, conversations) -%}
    not {{ progress }}.has_reached_last_stage
    and {{ conversations }}.outcome != 'in_progress'
{%- endmacro %}
