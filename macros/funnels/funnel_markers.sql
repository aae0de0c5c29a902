{#- The marker rules a funnel stage can use (`reached_by = marker`,
    `reached_by_value = <marker name>` in seeds/funnel_stages.csv).

    Edit the YAML below to add a marker, or replace the whole set for one run
    with the dbt var `funnel_markers` (same YAML shape), e.g.
    dbt build --vars '{funnel_markers: {asked_for_refund: {rule: {text: refund}}}}'.
    The language is documented in docs/funnels.md and in
    funnel_marker_rule_sql / funnel_marker_condition_sql. None of the shipped
    funnels uses a marker; these are ready-made examples. -#}
{% macro funnel_markers() -%}
    {%- set markers_yaml -%}
# The user asked for their money back at some point.
asked_for_refund:
  description: A user message mentions a refund.
  rule:
    at_least_once:
      event_type: user_message
      text: {matches: "refund|money back|reimburse"}

# The agent apologised and later the user left.
apologised_then_abandoned:
  description: An agent message apologises, then the conversation is abandoned.
  rule:
    seq:
      - and:
          - event_type: agent_message
          - text: {matches: "sorry|apologi[sz]e"}
      - event_type: conversation_abandoned

# Solved by the bot alone.
completed_without_handoff:
  description: Completed, and never handed off to a human.
  rule:
    and:
      - at_least_once: {event_type: conversation_completed}
      - never: {event_type: handoff_requested}

# A warm lead or a booked demo.
hot_lead:
  description: Started with a lead score of at least 70, or converted with goal demo_booked.
  rule:
    or:
      - at_least_once:
          event_type: conversation_started
          property: {name: lead_score, gte: 70}
      - at_least_once:
          event_type: conversion
          property: {name: goal, equals: demo_booked}

# No fallback at all during the conversation.
no_fallback:
  description: The agent never had to fall back.
  rule:
    not:
      at_least_once: {event_type: fallback_triggered}
    {%- endset -%}
    {%- set configured = var('funnel_markers', none) -%}
    {%- set markers = configured if configured is not none else fromyaml(markers_yaml) -%}
    {%- if markers is none -%}
        {%- set markers = {} -%}
    {%- endif -%}
    {%- if markers is not mapping -%}
        {{ exceptions.raise_compiler_error("funnel_markers must be a mapping of marker name -> {description, rule}") }}
    {%- endif -%}
    {%- for marker_name, marker in markers.items() -%}
        {%- if not modules.re.fullmatch('[a-z][a-z0-9_]*', marker_name | string) -%}
            {{ exceptions.raise_compiler_error("marker name '" ~ marker_name ~ "' must be lower-case letters, digits and _") }}
        {%- endif -%}
        {%- if marker is not mapping or 'rule' not in marker -%}
            {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "' needs a rule") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(markers) }}
{%- endmacro %}
