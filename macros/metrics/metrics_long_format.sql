{% macro metrics_long_format(from_cte, grain_columns) %}
    {%- set metrics = metrics_definitions() -%}
    {%- set double = type_double() -%}
metrics_aggregated as (
    select
        {%- for grain_column in grain_columns %}
        {{ from_cte }}.{{ grain_column }},
        {%- endfor %}
        {{ from_cte }}.segment_type,
        {{ from_cte }}.segment_value,
        {%- for metric in metrics %}
        {%- if metric.kind == 'percentile' %}
        {{ metrics_percentile_cont(from_cte ~ '.' ~ metric.expression, metric.percentile) }} as {{ metric.name }}__value,
        {%- else %}
        {{ metric_sum(metric.numerator) }} as {{ metric.name }}__numerator,
        {%- if metric.kind == 'ratio' %}
        {{ metric_sum(metric.denominator) }} as {{ metric.name }}__denominator,
        {%- endif %}
        {%- endif %}
        {%- endfor %}
        count(*) as conversation_segment_rows
    from {{ from_cte }}
    group by
        {%- for grain_column in grain_columns %}
        {{ from_cte }}.{{ grain_column }},
        {%- endfor %}
        {{ from_cte }}.segment_type,
        {{ from_cte }}.segment_value
),

metrics_long as (
    {%- for metric in metrics %}
    select
        {%- for grain_column in grain_columns %}
        metrics_aggregated.{{ grain_column }},
        {%- endfor %}
        '{{ metric.name }}' as metric_name,
        metrics_aggregated.segment_type,
        metrics_aggregated.segment_value,
        {%- if metric.kind == 'count' %}
        cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }}) as numerator,
        cast(null as {{ double }}) as denominator,
        cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }}) as value
    from metrics_aggregated
        {%- elif metric.kind == 'ratio' %}
        cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }}) as numerator,
        cast(metrics_aggregated.{{ metric.name }}__denominator as {{ double }}) as denominator,
        cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }})
        / cast(metrics_aggregated.{{ metric.name }}__denominator as {{ double }}) as value
    from metrics_aggregated
    where metrics_aggregated.{{ metric.name }}__denominator > 0
        {%- else %}
        cast(null as {{ double }}) as numerator,
        cast(null as {{ double }}) as denominator,
        cast(metrics_aggregated.{{ metric.name }}__value as {{ double }}) as value
    from metrics_aggregated
    where metrics_aggregated.{{ metric.name }}__value is not null
        {%- endif %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),
{%- endmacro %}

{% macro metric_sum(expression) -%}
    {%- set prefix, suffix = metric_flag_format().split('{}') -%}
    {%- set text = expression | trim -%}
    {%- set condition = text[prefix | length:(text | length) - (suffix | length)] | lower -%}
    {%- set is_flag = text.startswith(prefix) and text.endswith(suffix)
        and not modules.re.search('\\b(case|then)\\b', condition) -%}
    {%- if text == '1' or is_flag -%}
        cast(sum({{ text }}) as {{ type_double() }})
    {%- else -%}
        {{ exact_sum(expression) }}
    {%- endif -%}
{%- endmacro %}
