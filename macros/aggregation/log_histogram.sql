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

{% macro log_bucket_value(bucket, smallest, largest) -%}
    least(greatest(power(1.01, {{ bucket }} + 0.5), {{ smallest }}), {{ largest }})
{%- endmacro %}
