{#- The select list of one conversation's contribution to every metric of
    metrics_definitions(), over a relation with int_conversations_segmented's
    columns: <name>__numerator (counts and ratios) and <name>__denominator
    (ratios), each the per-conversation expression metrics_long_format()
    sums, and <name>__value (percentiles: the value ranked). Summed over any
    set of conversations they give the metrics of that set. -#}
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
