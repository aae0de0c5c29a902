-- MetricFlow's time spine: one row per day (only the semantic layer reads it).
{{ config(materialized='table', tags=['static']) }}
with

days as (
    {{ dbt.date_spine('day', "cast('2020-01-01' as date)", "cast('2036-01-01' as date)") }}
),

final as (
    select cast(days.date_day as date) as date_day
    from days
)

select * from final
