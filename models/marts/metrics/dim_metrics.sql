{#- The metric glossary as a table, generated from metrics_definitions() (the
    same list that builds metrics_daily and metrics_hourly), so BI tools can
    join it and it cannot drift from the numbers. -#}
{{ config(materialized='table', tags=['static']) }}

{%- set metrics = metrics_definitions() %}
{%- set null_string = 'cast(null as ' ~ dbt.type_string() ~ ')' %}

with

metric_glossary as (
    {% for metric in metrics %}
        {%- set numerator_definition = null_string if metric.numerator_definition is none
            else "'" ~ (metric.numerator_definition | replace("'", "''")) ~ "'" %}
        {%- set denominator_definition = null_string if metric.denominator_definition is none
            else "'" ~ (metric.denominator_definition | replace("'", "''")) ~ "'" %}
        select
            '{{ metric.name }}' as metric_name,
            '{{ metric.kind }}' as metric_kind,
            {{ 'true' if metric.proportion else 'false' }} as is_proportion,
            {{ null_string if metric.better is none else "'" ~ metric.better ~ "'" }} as better_direction,
            {{ 'false' if metric.kind == 'percentile' else 'true' }} as is_alertable,
            '{{ metric.unit }}' as unit,
            {{ numerator_definition }} as numerator_definition,
            {{ denominator_definition }} as denominator_definition,
            '{{ metric.description | replace("'", "''") }}' as description,
            {{ loop.index }} as display_order,
            cast({{ metric.percentile if metric.kind == 'percentile' else 'null' }} as {{ type_double() }})
                as percentile
        {% if not loop.last %}
            union all
        {% endif %}
    {% endfor %}
)

select * from metric_glossary
