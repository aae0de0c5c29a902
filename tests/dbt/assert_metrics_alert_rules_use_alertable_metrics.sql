{{ config(meta={'dagster': {'ref': {'name': 'stg_seeds__alert_rules'}}}) }}

{#- Every alert rule watches a metric that windows can re-aggregate (it has a
    numerator: not a percentile) and has a positive min_sample. A rule on a
    percentile would silently never fire. -#}

with

alert_rules as (
    select
        alert_rules.rule_name,
        alert_rules.metric_name,
        alert_rules.min_sample
    from {{ ref('stg_seeds__alert_rules') }} as alert_rules
),

dim_metrics as (
    select
        dim_metrics.metric_name,
        dim_metrics.is_alertable
    from {{ ref('dim_metrics') }} as dim_metrics
),

invalid_rules as (
    select
        alert_rules.rule_name,
        alert_rules.metric_name,
        alert_rules.min_sample
    from alert_rules
    left join dim_metrics
        on alert_rules.metric_name = dim_metrics.metric_name
    where
        not coalesce(dim_metrics.is_alertable, false)
        or alert_rules.min_sample is null
        or alert_rules.min_sample < 1
)

select * from invalid_rules
