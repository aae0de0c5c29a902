{#- Compares every proportion metric of metrics_daily (dim_metrics.is_proportion)
    across the values of every segment type it has (all but all/all), over
    one period: the whole history, or the days between the vars
    segment_comparison_start_date and segment_comparison_end_date. Each value
    is tested against the rest of its segment type (a pooled two-proportion
    z-test); the p-values are adjusted within metric and segment type
    (Benjamini-Hochberg). Numerators and denominators are re-aggregated from
    metrics_daily's day rows, never averaged. -#}
{{ config(materialized='view') }}

{%- set start_date = var('segment_comparison_start_date') %}
{%- set end_date = var('segment_comparison_end_date') %}
{%- set min_sample = var('segment_comparison_min_sample') | int %}
{%- set double = type_double() %}
{%- set start_literal = "cast(" ~ (string_literal(start_date) if start_date is not none else 'null')
    ~ " as " ~ type_date() ~ ")" %}
{%- set end_literal = "cast(" ~ (string_literal(end_date) if end_date is not none else 'null')
    ~ " as " ~ type_date() ~ ")" %}

with

compared_metrics as (
    select
        metric_name,
        better_direction
    from {{ ref('dim_metrics') }}
    where is_proportion
),

metrics as (
    select
        metrics_daily.metric_date,
        metrics_daily.metric_name,
        metrics_daily.segment_type,
        metrics_daily.segment_value,
        metrics_daily.numerator,
        metrics_daily.denominator
    from {{ ref('metrics_daily') }} as metrics_daily
    where
        metrics_daily.segment_type != 'all'
        and metrics_daily.metric_name in (select compared_metrics.metric_name from compared_metrics)
        -- an open end of the period compares the date with itself
        and metrics_daily.metric_date >= coalesce({{ start_literal }}, metrics_daily.metric_date)
        and metrics_daily.metric_date <= coalesce({{ end_literal }}, metrics_daily.metric_date)
),

-- the period compared (one row): the vars' days, an open end at the data's
-- first or last day
compared_period as (
    select
        coalesce({{ start_literal }}, min(metrics.metric_date)) as period_start,
        coalesce({{ end_literal }}, max(metrics.metric_date)) as period_end
    from metrics
),

segments_aggregated as (
    select
        metrics.metric_name,
        metrics.segment_type,
        metrics.segment_value,
        {{ exact_sum('metrics.numerator') }} as successes,
        {{ exact_sum('metrics.denominator') }} as sample_size
    from metrics
    group by
        metrics.metric_name,
        metrics.segment_type,
        metrics.segment_value
),

-- the rest: every other value of the same metric and segment type together
segments_with_rest as (
    select
        segments_aggregated.metric_name,
        segments_aggregated.segment_type,
        segments_aggregated.segment_value,
        cast(segments_aggregated.successes as {{ double }}) as successes,
        cast(segments_aggregated.sample_size as {{ double }}) as sample_size,
        cast(
            sum(segments_aggregated.successes) over (
                partition by segments_aggregated.metric_name, segments_aggregated.segment_type
            ) - segments_aggregated.successes as {{ double }}
        ) as rest_successes,
        cast(
            sum(segments_aggregated.sample_size) over (
                partition by segments_aggregated.metric_name, segments_aggregated.segment_type
            ) - segments_aggregated.sample_size as {{ double }}
        ) as rest_sample_size
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
        -- two-proportion z-test of this value against the rest (pooled se);
        -- null when there is no rest or the pooled rate is 0 or 1 (se = 0)
        {{ metrics_pooled_z_score(
            'segments_rated.successes',
            'segments_rated.sample_size',
            'segments_rated.rest_successes',
            'segments_rated.rest_sample_size',
        ) }} as z_score
    from segments_rated
),

segments_p_valued as (
    select
        segments_tested.*,
        {{ metrics_two_sided_p_value('segments_tested.z_score') }} as unadjusted_p_value
    from segments_tested
),

-- each p-value's rank within its family (metric x segment type), smallest
-- first, and the family's number of tests (values with a p-value)
segments_p_ranked as (
    select
        segments_p_valued.*,
        row_number() over (
            partition by segments_p_valued.metric_name, segments_p_valued.segment_type
            order by segments_p_valued.unadjusted_p_value asc nulls last, segments_p_valued.segment_value asc
        ) as p_value_rank,
        count(segments_p_valued.unadjusted_p_value) over (
            partition by segments_p_valued.metric_name, segments_p_valued.segment_type
        ) as family_tests
    from segments_p_valued
),

segments_adjusted as (
    select
        segments_p_ranked.*,
        {{ benjamini_hochberg_adjusted(
            'segments_p_ranked.unadjusted_p_value',
            'segments_p_ranked.p_value_rank',
            'segments_p_ranked.family_tests',
            'segments_p_ranked.metric_name, segments_p_ranked.segment_type',
        ) }} as p_value
    from segments_p_ranked
),

-- the best rate of each family among the values with enough sample: the
-- highest, or the lowest for a metric where lower is better
segments_ranked as (
    select
        segments_adjusted.*,
        compared_metrics.better_direction,
        case
            when segments_adjusted.sample_size >= {{ min_sample }}
                then
                    case
                        when compared_metrics.better_direction = 'lower' then -segments_adjusted.rate
                        else segments_adjusted.rate
                    end
        end as goodness
    from segments_adjusted
    inner join compared_metrics
        on segments_adjusted.metric_name = compared_metrics.metric_name
),

segments_compared as (
    select
        cast(segments_ranked.metric_name as {{ dbt.type_string() }}) as metric_name,
        cast(segments_ranked.segment_type as {{ dbt.type_string() }}) as segment_type,
        cast(segments_ranked.segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(compared_period.period_start as {{ type_date() }}) as period_start,
        cast(compared_period.period_end as {{ type_date() }}) as period_end,
        cast(segments_ranked.successes as {{ double }}) as numerator,
        cast(segments_ranked.sample_size as {{ double }}) as sample_size,
        cast(segments_ranked.rate as {{ double }}) as rate,
        cast(segments_ranked.ci_low as {{ double }}) as ci_low,
        cast(segments_ranked.ci_high as {{ double }}) as ci_high,
        cast(segments_ranked.rest_sample_size as {{ double }}) as rest_sample_size,
        cast(segments_ranked.rest_rate as {{ double }}) as rest_rate,
        cast(segments_ranked.rate - segments_ranked.rest_rate as {{ double }}) as difference_from_rest,
        cast(segments_ranked.z_score as {{ double }}) as z_score,
        cast(segments_ranked.unadjusted_p_value as {{ double }}) as unadjusted_p_value,
        cast(segments_ranked.p_value as {{ double }}) as p_value,
        segments_ranked.p_value < {{ var('significance_level') }} as is_significant,
        coalesce(
            segments_ranked.goodness = max(segments_ranked.goodness) over (
                partition by segments_ranked.metric_name, segments_ranked.segment_type
            ),
            false
        ) as is_best,
        cast(segments_ranked.better_direction as {{ dbt.type_string() }}) as better_direction,
        segments_ranked.sample_size < {{ min_sample }}
        or segments_ranked.rest_sample_size < {{ min_sample }} as is_small_sample,
        cast({{ min_sample }} as {{ dbt.type_int() }}) as min_sample
    from segments_ranked
    cross join compared_period
)

select * from segments_compared
