{{ config(meta={'dagster': {'ref': {'name': 'metrics_daily'}}}) }}

{#- Resolution (completed without handoff) is a subset of completion: for
    every day and segment, resolution_rate's numerator <= completion_rate's.
    Checked on the days this run recomputed (scope_days). -#}

with

days_in_scope as (
    select event_date from {{ ref('scope_days') }}
),

completion as (
    select
        metrics_daily.metric_date,
        metrics_daily.segment_type,
        metrics_daily.segment_value,
        metrics_daily.numerator
    from {{ ref('metrics_daily') }} as metrics_daily
    where
        metrics_daily.metric_name = 'completion_rate'
        and metrics_daily.metric_date in (select days_in_scope.event_date from days_in_scope)
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
        and metrics_daily.metric_date in (select days_in_scope.event_date from days_in_scope)
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
