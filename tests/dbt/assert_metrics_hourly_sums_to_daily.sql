{{ config(meta={'dagster': {'ref': {'name': 'metrics_hourly'}}}) }}

{#- Hourly and daily metrics agree: for every day x metric x segment, the
    hourly numerators and denominators sum to the daily ones (counts, rates,
    averages; percentiles cannot be summed). Both directions: a daily row
    without hours, or hours without a daily row, fail. One documented
    exception: fallbacks in an hour without any user message have no hourly
    fallback_rate row (denominator 0) but count in the day's numerator, so
    for fallback_rate the hourly numerators may fall short, never exceed.
    Checked on the days this run recomputed (scope_days). -#}

with

days_in_scope as (
    select event_date from {{ ref('scope_days') }}
),

daily as (
    select
        metrics_daily.metric_date,
        metrics_daily.metric_name,
        metrics_daily.segment_type,
        metrics_daily.segment_value,
        metrics_daily.numerator,
        metrics_daily.denominator
    from {{ ref('metrics_daily') }} as metrics_daily
    where
        metrics_daily.numerator is not null
        and metrics_daily.metric_date in (select days_in_scope.event_date from days_in_scope)
),

hourly_summed as (
    select
        metrics_hourly.metric_date,
        metrics_hourly.metric_name,
        metrics_hourly.segment_type,
        metrics_hourly.segment_value,
        sum(metrics_hourly.numerator) as numerator,
        sum(metrics_hourly.denominator) as denominator
    from {{ ref('metrics_hourly') }} as metrics_hourly
    where
        metrics_hourly.numerator is not null
        and metrics_hourly.metric_date in (select days_in_scope.event_date from days_in_scope)
    group by
        metrics_hourly.metric_date,
        metrics_hourly.metric_name,
        metrics_hourly.segment_type,
        metrics_hourly.segment_value
),

compared as (
    select
        daily.numerator as daily_numerator,
        hourly_summed.numerator as hourly_numerator,
        daily.denominator as daily_denominator,
        hourly_summed.denominator as hourly_denominator,
        coalesce(daily.metric_date, hourly_summed.metric_date) as metric_date,
        coalesce(daily.metric_name, hourly_summed.metric_name) as metric_name,
        coalesce(daily.segment_type, hourly_summed.segment_type) as segment_type,
        coalesce(daily.segment_value, hourly_summed.segment_value) as segment_value
    from daily
    full outer join hourly_summed
        on
            daily.metric_date = hourly_summed.metric_date
            and daily.metric_name = hourly_summed.metric_name
            and daily.segment_type = hourly_summed.segment_type
            and daily.segment_value = hourly_summed.segment_value
),

mismatches as (
    select compared.*
    from compared
    where
        compared.daily_numerator is null
        or compared.hourly_numerator is null
        or coalesce(compared.daily_denominator, -1) != coalesce(compared.hourly_denominator, -1)
        or (
            compared.metric_name != 'fallback_rate'
            and abs(compared.daily_numerator - compared.hourly_numerator)
            > 1e-9 * greatest(1, abs(compared.daily_numerator))
        )
        or (
            compared.metric_name = 'fallback_rate'
            and compared.hourly_numerator > compared.daily_numerator + 1e-9
        )
)

select * from mismatches
