{% macro funnel_marker_rule_sql(rule, state, marker_name) -%}
    {%- set operators = ['and', 'or', 'not', 'seq', 'at_least_once', 'never'] -%}
    {%- if rule is not mapping or rule | length == 0 -%}
        {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': a rule must be a non-empty mapping, got: " ~ rule) }}
    {%- endif -%}
    {%- set keys = rule.keys() | list -%}
    {%- if keys | select('in', operators) | list | length == 0 -%}
        {{ return(funnel_marker_rule_sql({'at_least_once': rule}, state, marker_name)) }}
    {%- endif -%}
    {%- if keys | length != 1 -%}
        {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': one operator per mapping at conversation level (wrap them in and/or), got: " ~ keys | join(', ')) }}
    {%- endif -%}
    {%- set operator = keys[0] -%}
    {%- set value = rule[operator] -%}
    {%- set no_time = 'cast(null as ' ~ dbt.type_timestamp() ~ ')' -%}

    {%- if operator in ['at_least_once', 'never'] -%}
        {%- set condition_sql = funnel_marker_condition_sql(value, marker_name, state) -%}
        {%- if condition_sql not in state.conditions -%}
            {%- do state.conditions.append(condition_sql) -%}
        {%- endif -%}
        {%- set column = 'event_conditions_aggregated.condition_' ~ (state.conditions.index(condition_sql) + 1) ~ '_at' -%}
        {%- if operator == 'at_least_once' -%}
            {{ return({'reached': '(' ~ column ~ ' is not null)', 'at': column}) }}
        {%- else -%}
            {{ return({'reached': '(' ~ column ~ ' is null)', 'at': no_time}) }}
        {%- endif -%}

    {%- elif operator == 'seq' -%}
        {%- if value is string or value is mapping or value is not sequence or value | length == 0 -%}
            {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': seq needs a non-empty list of event conditions") }}
        {%- endif -%}
        {%- set steps = [] -%}
        {%- for item in value -%}
            {%- do steps.append(funnel_marker_condition_sql(item, marker_name, state)) -%}
        {%- endfor -%}
        {%- if steps not in state.sequences -%}
            {%- do state.sequences.append(steps) -%}
        {%- endif -%}
        {%- set column = 'sequence_' ~ (state.sequences.index(steps) + 1) ~ '_completed.completed_at' -%}
        {{ return({'reached': '(' ~ column ~ ' is not null)', 'at': column}) }}

    {%- elif operator == 'not' -%}
        {%- set inner = funnel_marker_rule_sql(value, state, marker_name) -%}
        {{ return({'reached': '(not ' ~ inner.reached ~ ')', 'at': no_time}) }}

    {%- else -%}
        {%- if value is string or value is mapping or value is not sequence or value | length == 0 -%}
            {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': " ~ operator ~ " needs a non-empty list of rules") }}
        {%- endif -%}
        {%- set reached_parts = [] -%}
        {%- set time_parts = [] -%}
        {%- for item in value -%}
            {%- set inner = funnel_marker_rule_sql(item, state, marker_name) -%}
            {%- do reached_parts.append(inner.reached) -%}
            {%- if operator == 'and' -%}
                {%- do time_parts.append(inner.at) -%}
            {%- else -%}
                {%- do time_parts.append('case when ' ~ inner.reached ~ ' then ' ~ inner.at ~ ' end') -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set reached_sql = '(' ~ reached_parts | join(' ' ~ operator ~ ' ') ~ ')' -%}
        {%- if time_parts | length == 1 -%}
            {%- set time_sql = time_parts[0] -%}
        {%- else -%}
            {#- greatest/least skip nulls: a part without a time does not hide the others -#}
            {%- set time_sql = ('greatest(' if operator == 'and' else 'least(') ~ time_parts | join(', ') ~ ')' -%}
        {%- endif -%}
        {{ return({'reached': reached_sql, 'at': time_sql}) }}
    {%- endif -%}
{%- endmacro %}
