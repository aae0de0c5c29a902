{#- Compares one proportion metric across the values of one segment type
    over a period, chosen with vars (segment_comparison_metric,
    segment_comparison_segment_type, segment_comparison_start_date,
    segment_comparison_end_date, segment_comparison_min_sample).
    Numerators and denominators are re-aggregated from metrics_daily, never
    averaged. -#}
{{ config(materialized='view') }}

{%- set metric_name = var('segment_comparison_metric') %}
{%- set segment_type = var('segment_comparison_segment_type') %}
{%- set start_date = var('segment_comparison_start_date') %}
{%- set end_date = var('segment_comparison_end_date') %}
{%- set min_sample = var('segment_comparison_min_sample') | int %}
{%- set metric = metrics_definitions() | selectattr('name', 'equalto', metric_name) | list %}
{%- if metric | length == 0 or not metric[0].proportion %}
    {{ exceptions.raise_compiler_error(
        "segment_comparison_metric '" ~ metric_name ~ "' is not a proportion metric "
        ~ "(a count of conversations out of a count of conversations); choose one of: "
        ~ (metrics_definitions() | selectattr('proportion') | map(attribute='name') | join(', '))
    ) }}
{% endif %}
{%- set open_end = 'metrics_daily.metric_date' %}
{%- set period_start = open_end if start_date is none
    else "cast(" ~ string_literal(start_date) ~ " as " ~ type_date() ~ ")" %}
{%- set period_end = open_end if end_date is none
    else "cast(" ~ string_literal(end_date) ~ " as " ~ type_date() ~ ")" %}
{%- set double = type_double() %}

with

metrics as (
    select
        metrics_daily.metric_date,
        metrics_daily.segment_value,
        metrics_daily.numerator,
        metrics_daily.denominator
    from {{ ref('metrics_daily') }} as metrics_daily
    where
        metrics_daily.metric_name = {{ string_literal(metric_name) }}
        and metrics_daily.segment_type = {{ string_literal(segment_type) }}
        -- an open end of the period compares the date with itself
        and metrics_daily.metric_date >= {{ period_start }}
        and metrics_daily.metric_date <= {{ period_end }}
),

segments_aggregated as (
    select
        metrics.segment_value,
        {{ exact_sum('metrics.numerator') }} as successes,
        {{ exact_sum('metrics.denominator') }} as sample_size,
        min(metrics.metric_date) as first_date,
        max(metrics.metric_date) as last_date
    from metrics
    group by metrics.segment_value
),

segments_with_rest as (
    select
        segments_aggregated.segment_value,
        cast(segments_aggregated.successes as {{ double }}) as successes,
        cast(segments_aggregated.sample_size as {{ double }}) as sample_size,
        cast(sum(segments_aggregated.successes) over () - segments_aggregated.successes as {{ double }})
            as rest_successes,
        cast(sum(segments_aggregated.sample_size) over () - segments_aggregated.sample_size as {{ double }})
            as rest_sample_size,
        min(segments_aggregated.first_date) over () as period_start,
        max(segments_aggregated.last_date) over () as period_end
    from segments_aggregated
),

segments_rated as (
    select
        segments_with_rest.*,
        segments_with_rest.successes / segments_with_rest.sample_size as rate,
        case
            when segments_with_rest.rest_sample_size > 0
                then segments_with_rest.rest_successes / segments_with_rest.rest_sample_size
        end as rest_rate
    from segments_with_rest
),

segments_tested as (
    select
        segments_rated.*,
        -- Wilson score interval, 95%
        {{ wilson_interval_bound('segments_rated.rate', 'segments_rated.sample_size', 'low') }} as ci_low,
        {{ wilson_interval_bound('segments_rated.rate', 'segments_rated.sample_size', 'high') }} as ci_high,
        -- two-proportion z-test of this segment against all the others (pooled se);
        -- null when there is no rest or the pooled rate is 0 or 1 (se = 0)
        {{ metrics_pooled_z_score(
            'segments_rated.successes',
            'segments_rated.sample_size',
            'segments_rated.rest_successes',
            'segments_rated.rest_sample_size',
        ) }} as z_score
    from segments_rated
),

segments_compared as (
    select
        {{ string_literal(metric_name) }} as metric_name,
        {{ string_literal(segment_type) }} as segment_type,
        segments_tested.segment_value,
        segments_tested.period_start,
        segments_tested.period_end,
        segments_tested.successes as numerator,
        segments_tested.sample_size,
        segments_tested.rate,
        segments_tested.ci_low,
        segments_tested.ci_high,
        segments_tested.rest_sample_size,
        segments_tested.rest_rate,
        segments_tested.rate - segments_tested.rest_rate as difference_from_rest,
        segments_tested.z_score,
        {{ metrics_two_sided_p_value('segments_tested.z_score') }} as p_value,
        segments_tested.sample_size < {{ min_sample }}
        or segments_tested.rest_sample_size < {{ min_sample }} as is_small_sample,
        case
            when
                segments_tested.sample_size >= {{ min_sample }}
                and segments_tested.rest_sample_size >= {{ min_sample }}
                then {{ metrics_two_sided_p_value('segments_tested.z_score') }} < {{ var('significance_level') }}
        end as is_significant,
        {{ min_sample }} as min_sample
    from segments_tested
)

select * from segments_compared
