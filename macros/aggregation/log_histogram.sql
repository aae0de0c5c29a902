{#- A median over a whole history cannot be summed from daily partials, but
    a histogram can: a partial stores, per day, how many values fell in each
    bucket (with the smallest and largest of them), and the median is read
    from the buckets summed over the days (docs/funnels.md). Buckets are
    logarithmic, each 1% wider than the one before: bucket b holds the
    positive values from 1.01^b up to 1.01^(b + 1). The middle of a bucket is
    within 0.5% of any value in it. -#}

{#- The bucket of a non-negative value: floor(log base 1.01 of it); 0 (and
    anything not positive) gets its own bucket, log_bucket_of_zero(), below
    every other (the smallest positive double is in bucket -74,815); null
    stays null. -#}
{% macro log_bucket(expression) -%}
    case
        when {{ expression }} > 0
            then cast(floor(ln({{ expression }}) / ln(1.01)) as {{ dbt.type_int() }})
        when {{ expression }} is not null
            then {{ log_bucket_of_zero() }}
    end
{%- endmacro %}

{% macro log_bucket_of_zero() -%}
    -100000
{%- endmacro %}

{#- The value that stands for every value of a bucket: its geometric middle
    1.01^(b + 0.5), kept between the smallest and largest value the bucket
    holds (`smallest`, `largest`), so a bucket holding one distinct value
    (every 0, say) stands for exactly that value. -#}
{% macro log_bucket_value(bucket, smallest, largest) -%}
    least(greatest(power(1.01, {{ bucket }} + 0.5), {{ smallest }}), {{ largest }})
{%- endmacro %}
