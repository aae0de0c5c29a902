{#- Evaluates seeds/alert_rules.csv on fixed UTC windows: `1h` = each hour
    and `4h` = the blocks starting 00:00, 04:00, ... (both from
    metrics_hourly), `1d` = each day (from metrics_daily). A window's value
    re-aggregates numerators and denominators (never averages of averages);
    its sample size is the summed denominator (the count itself for count
    metrics). Only windows with data are evaluated; a rule fires only when
    the sample (and for drops_by_points_wow the baseline's sample too) is at
    least min_sample. segment_value '*' evaluates every value of the segment
    type. Percentile metrics have no numerator and cannot be alerted on.
    A table rebuilt each run: it keeps only the windows that fired, and a
    day's windows depend on the day a week before (drops_by_points_wow), so
    it reads the metrics whole rather than tracking which days compare with
    which. -#}
{{ config(materialized='table') }}
{%- set double = type_double() %}

with

rules as (
    select
        alert_rules.rule_name,
        alert_rules.metric_name,
        alert_rules.segment_type,
        alert_rules.segment_value,
        alert_rules.condition,
        cast(alert_rules.threshold as {{ double }}) as threshold,
        alert_rules.time_window,
        alert_rules.severity,
        cast(alert_rules.min_sample as {{ dbt.type_bigint() }}) as min_sample
    from {{ ref('stg_seeds__alert_rules') }} as alert_rules
),

hourly_metrics as (
    select
        metrics_hourly.metric_hour,
        metrics_hourly.metric_name,
        metrics_hourly.segment_type,
        metrics_hourly.segment_value,
        metrics_hourly.numerator,
        metrics_hourly.denominator
    from {{ ref('metrics_hourly') }} as metrics_hourly
),

daily_metrics as (
    select
        metrics_daily.metric_date,
        metrics_daily.metric_name,
        metrics_daily.segment_type,
        metrics_daily.segment_value,
        metrics_daily.numerator,
        metrics_daily.denominator
    from {{ ref('metrics_daily') }} as metrics_daily
),

rule_rows_windowed as (
    select
        rules.rule_name,
        hourly_metrics.segment_type,
        hourly_metrics.segment_value,
        case
            when rules.time_window = '1h' then hourly_metrics.metric_hour
            else {{ dbt.dateadd(
                'hour',
                'floor(extract(hour from hourly_metrics.metric_hour) / 4) * 4',
                dbt.date_trunc('day', 'hourly_metrics.metric_hour')
            ) }}
        end as window_start,
        hourly_metrics.numerator,
        hourly_metrics.denominator
    -- the rules on the right: DuckDB hashes the side written there
    -- (profiles.yml keeps it), a few rows rather than every metric row
    from hourly_metrics
    inner join rules
        on
            hourly_metrics.metric_name = rules.metric_name
            and hourly_metrics.segment_type = rules.segment_type
            and (rules.segment_value = '*' or hourly_metrics.segment_value = rules.segment_value)
    where rules.time_window in ('1h', '4h')
    union all
    select
        rules.rule_name,
        daily_metrics.segment_type,
        daily_metrics.segment_value,
        cast(daily_metrics.metric_date as {{ dbt.type_timestamp() }}) as window_start,
        daily_metrics.numerator,
        daily_metrics.denominator
    from daily_metrics
    inner join rules
        on
            daily_metrics.metric_name = rules.metric_name
            and daily_metrics.segment_type = rules.segment_type
            and (rules.segment_value = '*' or daily_metrics.segment_value = rules.segment_value)
    where rules.time_window = '1d'
),

windows_aggregated as (
    select
        rule_rows_windowed.rule_name,
        rule_rows_windowed.segment_type,
        rule_rows_windowed.segment_value,
        rule_rows_windowed.window_start,
        {{ exact_sum('rule_rows_windowed.numerator') }} as numerator,
        {{ exact_sum('rule_rows_windowed.denominator') }} as denominator
    from rule_rows_windowed
    group by
        rule_rows_windowed.rule_name,
        rule_rows_windowed.segment_type,
        rule_rows_windowed.segment_value,
        rule_rows_windowed.window_start
),

windows_valued as (
    select
        windows_aggregated.rule_name,
        windows_aggregated.segment_type,
        windows_aggregated.segment_value,
        windows_aggregated.window_start,
        -- count metrics have no denominator: the value and the sample are the count
        case
            when windows_aggregated.denominator is null then windows_aggregated.numerator
            when windows_aggregated.denominator > 0
                then windows_aggregated.numerator / windows_aggregated.denominator
        end as observed_value,
        coalesce(windows_aggregated.denominator, windows_aggregated.numerator) as sample_size
    from windows_aggregated
    where windows_aggregated.numerator is not null
),

windows_judged as (
    select
        rules.rule_name,
        rules.metric_name,
        windows_valued.segment_type,
        windows_valued.segment_value,
        rules.time_window,
        windows_valued.window_start,
        case
            when rules.time_window = '1h' then {{ dbt.dateadd('hour', 1, 'windows_valued.window_start') }}
            when rules.time_window = '4h' then {{ dbt.dateadd('hour', 4, 'windows_valued.window_start') }}
            else {{ dbt.dateadd('day', 1, 'windows_valued.window_start') }}
        end as window_end,
        rules.condition,
        windows_valued.observed_value,
        week_earlier.observed_value as baseline_value,
        rules.threshold,
        windows_valued.sample_size,
        week_earlier.sample_size as baseline_sample_size,
        rules.min_sample,
        rules.severity,
        case
            when windows_valued.sample_size < rules.min_sample then false
            when rules.condition = 'drops_below'
                then windows_valued.observed_value < rules.threshold
            when rules.condition = 'exceeds'
                then windows_valued.observed_value > rules.threshold
            when rules.condition = 'drops_by_points_wow'
                then
                    week_earlier.sample_size >= rules.min_sample
                    and week_earlier.observed_value - windows_valued.observed_value > rules.threshold
            else false
        end as has_fired
    from windows_valued
    inner join rules
        on windows_valued.rule_name = rules.rule_name
    left join windows_valued as week_earlier
        on
            windows_valued.rule_name = week_earlier.rule_name
            and windows_valued.segment_type = week_earlier.segment_type
            and windows_valued.segment_value = week_earlier.segment_value
            and week_earlier.window_start = {{ dbt.dateadd('day', -7, 'windows_valued.window_start') }}
),

alerts_fired as (
    select
        windows_judged.rule_name,
        windows_judged.metric_name,
        windows_judged.segment_type,
        windows_judged.segment_value,
        windows_judged.time_window,
        cast(windows_judged.window_start as {{ type_date() }}) as window_date,
        windows_judged.window_start,
        windows_judged.window_end,
        windows_judged.condition,
        cast(windows_judged.observed_value as {{ double }}) as observed_value,
        cast(windows_judged.baseline_value as {{ double }}) as baseline_value,
        windows_judged.threshold,
        cast(windows_judged.sample_size as {{ dbt.type_bigint() }}) as sample_size,
        cast(windows_judged.baseline_sample_size as {{ dbt.type_bigint() }}) as baseline_sample_size,
        windows_judged.min_sample,
        windows_judged.severity
    from windows_judged
    where coalesce(windows_judged.has_fired, false)
)

select * from alerts_fired
