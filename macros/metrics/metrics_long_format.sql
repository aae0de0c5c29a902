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
        {{ metrics_percentile_cont(from_cte ~ '.' ~ metric.name ~ '__value', metric.percentile) }} as {{ metric.name }}__value,
        {%- else %}
        {{ metric_sum(metric.numerator, from_cte ~ '.' ~ metric.name ~ '__numerator') }} as {{ metric.name }}__numerator,
        {%- if metric.kind == 'ratio' %}
        {{ metric_sum(metric.denominator, from_cte ~ '.' ~ metric.name ~ '__denominator') }} as {{ metric.name }}__denominator,
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

metrics_stacked as (
    select
        {%- for grain_column in grain_columns %}
        metrics_aggregated.{{ grain_column }},
        {%- endfor %}
        metric_kinds.metric_name,
        metric_kinds.metric_kind,
        metrics_aggregated.segment_type,
        metrics_aggregated.segment_value,
        case metric_kinds.metric_name
            {%- for metric in metrics if metric.kind != 'percentile' %}
            when '{{ metric.name }}' then cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }})
            {%- endfor %}
        end as numerator,
        case metric_kinds.metric_name
            {%- for metric in metrics if metric.kind == 'ratio' %}
            when '{{ metric.name }}' then cast(metrics_aggregated.{{ metric.name }}__denominator as {{ double }})
            {%- endfor %}
        end as denominator,
        case metric_kinds.metric_name
            {%- for metric in metrics %}
            {%- if metric.kind == 'ratio' %}
            when '{{ metric.name }}' then case when metrics_aggregated.{{ metric.name }}__denominator > 0
                then cast(metrics_aggregated.{{ metric.name }}__numerator as {{ double }})
                / cast(metrics_aggregated.{{ metric.name }}__denominator as {{ double }}) end
            {%- else %}
            when '{{ metric.name }}' then cast(metrics_aggregated.{{ metric.name }}__{{ 'numerator' if metric.kind == 'count' else 'value' }} as {{ double }})
            {%- endif %}
            {%- endfor %}
        end as value
    -- one pass over the aggregated rows (Spark inlines CTEs: a union per metric would compute them once per metric)
    from metrics_aggregated
    cross join (values
        {%- for metric in metrics %}
        ('{{ metric.name }}', '{{ metric.kind }}'){{ ',' if not loop.last }}
        {%- endfor %}
    ) as metric_kinds (metric_name, metric_kind)
),

-- counts keep every row, ratios need a denominator above 0, percentiles a value
metrics_long as (
    select * from metrics_stacked
    where
        metric_kind = 'count'
        or (metric_kind = 'ratio' and denominator > 0)
        or (metric_kind = 'percentile' and value is not null)
),
{%- endmacro %}

{% macro metric_sum(expression, contribution) -%}
    {%- set prefix, suffix = metric_flag_format().split('{}') -%}
    {%- set text = expression | trim -%}
    {%- set condition = text[prefix | length:(text | length) - (suffix | length)] | lower -%}
    {%- set is_flag = text.startswith(prefix) and text.endswith(suffix)
        and not modules.re.search('\\b(case|then)\\b', condition) -%}
    {%- if text == '1' or is_flag -%}
        cast(sum({{ contribution }}) as {{ type_double() }})
    {%- else -%}
        {{ exact_sum(contribution) }}
    {%- endif -%}
{%- endmacro %}
