{% macro metrics_contribution_columns() %}
    {%- set double = type_double() -%}
    {%- set columns = [] -%}
    {%- for metric in metrics_definitions() -%}
        {%- if metric.kind == 'percentile' -%}
            {%- do columns.append('cast(' ~ metric.expression ~ ' as ' ~ double ~ ') as ' ~ metric.name ~ '__value') -%}
        {%- else -%}
            {%- do columns.append('cast(' ~ metric.numerator ~ ' as ' ~ double ~ ') as ' ~ metric.name ~ '__numerator') -%}
            {%- if metric.kind == 'ratio' -%}
                {%- do columns.append(
                    'cast(' ~ metric.denominator ~ ' as ' ~ double ~ ') as ' ~ metric.name ~ '__denominator'
                ) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ columns | join(',\n        ') }}
{%- endmacro %}
