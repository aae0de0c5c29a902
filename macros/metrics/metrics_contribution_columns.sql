{% macro metrics_contribution_columns() %}
    {%- for name, expression in metrics_contributions() %}
        cast({{ expression }} as {{ type_double() }}) as {{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro metrics_contributions() %}
    {%- set contributions = [] -%}
    {%- for metric in metrics_definitions() -%}
        {%- set parts = {'percentile': ['value'], 'ratio': ['numerator', 'denominator']}.get(metric.kind, ['numerator']) -%}
        {%- for part in parts -%}
            {%- do contributions.append((metric.name ~ '__' ~ part, metric.expression if part == 'value' else metric[part])) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(contributions) }}
{%- endmacro %}
