{% macro funnel_marker_property_sql(rule, marker_name, state) -%}
    {%- if rule is not mapping or 'name' not in rule or rule | length != 2 -%}
        {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': property needs a name and exactly one operator, got: " ~ rule) }}
    {%- endif -%}
    {%- if not modules.re.fullmatch('[A-Za-z_][A-Za-z0-9_]*', rule['name'] | string) -%}
        {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': property name must be letters, digits and _: " ~ rule['name']) }}
    {%- endif -%}
    {#- the text as sent: a field with a column of its own is read back from it when the stored
        object left it out (properties_without_columns) -#}
    {%- set columns, property_text = event_property_columns(), json_text('events.properties', rule['name']) -%}
    {%- if rule['name'] in columns.text + columns.number + columns.integer and rule['name'] not in columns.kept -%}
        {%- set property_text = 'coalesce(' ~ property_text ~ ', cast(events.' ~ rule['name'] ~ ' as ' ~ dbt.type_string() ~ '))' -%}
        {%- do state.properties.append(rule['name']) -%}
    {%- endif -%}
    {%- set property_number = dbt.safe_cast(property_text, type_double()) -%}
    {%- set operator = (rule.keys() | reject('equalto', 'name') | list)[0] -%}
    {%- set value = rule[operator] -%}
    {%- set numeric_operators = {'gt': '>', 'gte': '>=', 'lt': '<', 'lte': '<='} -%}
    {%- if operator in ['equals', 'not_equals'] -%}
        {%- set comparison = '=' if operator == 'equals' else '!=' -%}
        {%- if value is boolean -%}
            {%- set sql = 'lower(' ~ property_text ~ ') ' ~ comparison ~ " '" ~ (value | string | lower) ~ "'" -%}
        {%- elif value is number -%}
            {%- set sql = property_number ~ ' ' ~ comparison ~ ' ' ~ value -%}
        {%- else -%}
            {%- set sql = property_text ~ ' ' ~ comparison ~ ' ' ~ funnel_sql_literal(value) -%}
        {%- endif -%}
    {%- elif operator == 'in' -%}
        {%- if value is string or value is not sequence or value | length == 0 -%}
            {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': property 'in' needs a non-empty list") }}
        {%- endif -%}
        {%- set literals = [] -%}
        {%- for item in value -%}
            {%- do literals.append(funnel_sql_literal(item)) -%}
        {%- endfor -%}
        {%- set sql = property_text ~ ' in (' ~ literals | join(', ') ~ ')' -%}
    {%- elif operator == 'matches' -%}
        {%- set sql = funnel_text_matches(property_text, value) -%}
    {%- elif operator in numeric_operators -%}
        {%- if value is not number or value is boolean -%}
            {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': property '" ~ operator ~ "' needs a number") }}
        {%- endif -%}
        {%- set sql = property_number ~ ' ' ~ numeric_operators[operator] ~ ' ' ~ value -%}
    {%- elif operator == 'exists' -%}
        {%- set sql = property_text ~ (' is not null' if value else ' is null') -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("marker '" ~ marker_name ~ "': unknown property operator '" ~ operator ~ "'") }}
    {%- endif -%}
    {{ return('coalesce(' ~ sql ~ ', false)') }}
{%- endmacro %}
