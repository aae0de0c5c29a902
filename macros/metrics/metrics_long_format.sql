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

{{ metrics_unpivoted(metrics, grain_columns) }}
{%- endmacro %}

{% macro metrics_unpivoted(metrics, grain_columns) -%}
    {{ return(adapter.dispatch('metrics_unpivoted', 'convo_warehouse')(metrics, grain_columns)) }}
{%- endmacro %}

{% macro default__metrics_unpivoted(metrics, grain_columns) -%}
    {%- set double = type_double() -%}
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

{% macro spark__metrics_unpivoted(metrics, grain_columns) -%}
    {%- set double = type_double() -%}
metrics_long as (
    select
        {%- for grain_column in grain_columns %}
        metrics_stacked.{{ grain_column }},
        {%- endfor %}
        metrics_stacked.metric_name,
        metrics_stacked.segment_type,
        metrics_stacked.segment_value,
        metrics_stacked.numerator,
        metrics_stacked.denominator,
        metrics_stacked.value
    from (
        select
            {%- for grain_column in grain_columns %}
            metrics_aggregated.{{ grain_column }},
            {%- endfor %}
            metrics_aggregated.segment_type,
            metrics_aggregated.segment_value,
            stack(
                {{ metrics | length }},
                {%- for metric in metrics %}
                {%- if metric.kind == 'count' %}
                '{{ metric.name }}', 'count',
                cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }}),
                cast(null as {{ double }}),
                cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }})
                {%- elif metric.kind == 'ratio' %}
                '{{ metric.name }}', 'ratio',
                cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }}),
                cast(metrics_aggregated.{{ metric.name }}__denominator as {{ double }}),
                case
                    when metrics_aggregated.{{ metric.name }}__denominator > 0
                        then cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }})
                        / cast(metrics_aggregated.{{ metric.name }}__denominator as {{ double }})
                end
                {%- else %}
                '{{ metric.name }}', 'percentile',
                cast(null as {{ double }}),
                cast(null as {{ double }}),
                cast(metrics_aggregated.{{ metric.name }}__value as {{ double }})
                {%- endif %}
                {{- ',' if not loop.last }}
                {%- endfor %}
            ) as (metric_name, metric_kind, numerator, denominator, value)
        from metrics_aggregated
    ) as metrics_stacked
    -- counts keep every row, ratios need a denominator above 0, percentiles a value
    where
        metrics_stacked.metric_kind = 'count'
        or (metrics_stacked.metric_kind = 'ratio' and metrics_stacked.denominator > 0)
        or (metrics_stacked.metric_kind = 'percentile' and metrics_stacked.value is not null)
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
