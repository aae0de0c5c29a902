{% macro funnel_marker_condition_sql(condition, marker_name, state) -%}
    {%- if condition is not mapping or condition | length == 0 -%}
        {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': an event condition must be a non-empty mapping, got: " ~ condition) }}
    {%- endif -%}
    {%- set parts = [] -%}
    {%- for key, value in condition.items() -%}
        {%- if key in ['and', 'or'] -%}
            {%- if value is string or value is not sequence or value is mapping or value | length == 0 -%}
                {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': '" ~ key ~ "' needs a non-empty list of conditions") }}
            {%- endif -%}
            {%- set inner = [] -%}
            {%- for item in value -%}
                {%- do inner.append(funnel_marker_condition_sql(item, marker_name, state)) -%}
            {%- endfor -%}
            {%- do parts.append('(' ~ inner | join(' ' ~ key ~ ' ') ~ ')') -%}
        {%- elif key == 'not' -%}
            {%- do parts.append('(not ' ~ funnel_marker_condition_sql(value, marker_name, state) ~ ')') -%}
        {%- elif key == 'event_type' -%}
            {%- set event_types = [value] if value is string else value -%}
            {%- set literals = [] -%}
            {%- for event_type in event_types -%}
                {%- do literals.append(funnel_sql_literal(event_type)) -%}
            {%- endfor -%}
            {%- do parts.append('coalesce(events.event_type in (' ~ literals | join(', ') ~ '), false)') -%}
        {%- elif key == 'text' -%}
            {%- set text_rule = {'matches': value} if value is string else value -%}
            {%- if text_rule is not mapping or text_rule | length != 1 or (text_rule.keys() | list)[0] not in ['matches', 'contains'] -%}
                {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': text needs exactly one of matches, contains") }}
            {%- endif -%}
            {%- if 'matches' in text_rule -%}
                {%- do parts.append(funnel_text_matches('events.content', text_rule['matches'])) -%}
            {%- else -%}
                {%- do parts.append("coalesce(strpos(lower(events.content), lower(" ~ funnel_sql_literal(text_rule['contains']) ~ ")) > 0, false)") -%}
            {%- endif -%}
        {%- elif key == 'property' -%}
            {%- do parts.append(funnel_marker_property_sql(value, marker_name, state)) -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': unknown event condition '" ~ key ~ "' (expected event_type, property, text, and, or, not)") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if parts | length == 1 -%}
        {{ return(parts[0]) }}
    {%- else -%}
        {{ return('(' ~ parts | join(' and ') ~ ')') }}
    {%- endif -%}
{%- endmacro %}
