{#- Resolution (completed without handoff) is a subset of completion: for
    every day and segment, resolution_rate's numerator <= completion_rate's.
    Checked on the days metrics_daily's newest build rewrote; every day after
    a full build. -#}

with

completion as (
    select
        metrics_daily.metric_date,
        metrics_daily.segment_type,
        metrics_daily.segment_value,
        metrics_daily.numerator
    from {{ ref('metrics_daily') }} as metrics_daily
    where
        metrics_daily.metric_name = 'completion_rate'
        and {{ written_days(['metrics_daily'], 'metrics_daily.metric_date') }}
),

resolution as (
    select
        metrics_daily.metric_date,
        metrics_daily.segment_type,
        metrics_daily.segment_value,
        metrics_daily.numerator
    from {{ ref('metrics_daily') }} as metrics_daily
    where
        metrics_daily.metric_name = 'resolution_rate'
        and {{ written_days(['metrics_daily'], 'metrics_daily.metric_date') }}
),

violations as (
    select
        resolution.metric_date,
        resolution.segment_type,
        resolution.segment_value,
        resolution.numerator as resolved,
        completion.numerator as completed
    from resolution
    left join completion
        on
            resolution.metric_date = completion.metric_date
            and resolution.segment_type = completion.segment_type
            and resolution.segment_value = completion.segment_value
    where completion.numerator is null or resolution.numerator > completion.numerator
)

select * from violations
