{% macro funnel_markers() -%}
    {%- set markers_yaml -%}
asked_for_refund:
  description: A user message mentions a refund.
  rule:
    at_least_once:
      event_type: user_message
      text: {matches: "refund|money back|reimburse"}

apologised_then_abandoned:
  description: An agent message apologises, then the conversation is abandoned.
  rule:
    seq:
      - and:
          - event_type: agent_message
          - text: {matches: "sorry|apologi[sz]e"}
      - event_type: conversation_abandoned

completed_without_handoff:
  description: Completed, and never handed off to a human.
  rule:
    and:
      - at_least_once: {event_type: conversation_completed}
      - never: {event_type: handoff_requested}

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
