{% macro event_property_columns() -%}
    {{ return({
        'text': ['device', 'source', 'language', 'environment', 'page_url', 'agent_id', 'content', 'intent',
            'model', 'tool_name', 'topic', 'reason', 'rating', 'comment', 'goal', 'funnel', 'stage', 'test_name',
            'variant', 'button', 'flow_name', 'sender'],
        'number': ['lead_score', 'intent_confidence', 'sentiment', 'latency_ms'],
        'integer': ['turn', 'message_length', 'response_length', 'total_turns', 'abandoned_at_turn', 'input_tokens',
            'output_tokens'],
        'kept': ['funnel', 'stage'],
    }) }}
{%- endmacro %}

{% macro properties_without_columns(properties, values) -%}
    {{ return(adapter.dispatch('properties_without_columns', 'convo_warehouse')(properties, values)) }}
{%- endmacro %}

{% macro default__properties_without_columns(properties, values) %}{{ properties }}{% endmacro %}

{#- An object whose every key is a removed field (as many keys as those fields' non-null texts) is '{}' at once, without
    json_merge_patch; each branch's patch is a constant (a patch chosen per row by a case is parsed per row). -#}
{% macro duckdb__properties_without_columns(properties, values) -%}
    {%- set columns, read_back, branches = event_property_columns(), {}, [] -%}
    {%- for kind, type in [('integer', dbt.type_int()), ('number', 'double')] -%}
        {%- set checks = [] -%}
        {%- for name in columns[kind] -%}
            {%- set sent = json_text_field(values, name) -%}
            {%- do checks.append('coalesce(cast(' ~ dbt.safe_cast(sent, type) ~ ' as varchar) = ' ~ sent ~ ', ' ~ sent ~ ' is null)') -%}
        {%- endfor -%}
        {%- do read_back.update({kind: '(' ~ checks | join(' and ') ~ ')'}) -%}
    {%- endfor -%}
    {%- for kinds in [['integer', 'number'], ['integer'], ['number'], []] -%}
        {%- set patch, conditions = {}, ['true'] + ([read_back.integer] if 'integer' in kinds else []) + ([read_back.number] if 'number' in kinds else []) -%}
        {%- for name in columns.text + (columns.integer if 'integer' in kinds else []) + (columns.number if 'number' in kinds else []) if name not in columns.kept %}{% do patch.update({name: none}) %}{% endfor -%}
        {%- do branches.append((conditions | join(' and '), patch)) -%}
    {%- endfor -%}
    case when {{ properties }} is null then null
        when {{ branches[0][0] }} and len(json_keys({{ properties }})) = {% for name in branches[0][1] %}{{ ' + ' if not loop.first }}cast({{ json_text_field(values, name) }} is not null as integer){% endfor %} then '{}'
        {%- for condition, patch in branches %}
        when {{ condition }} then cast(json_merge_patch({{ properties }}, '{{ tojson(patch) }}') as varchar)
        {%- endfor %} end
{%- endmacro %}
