{#- Aggregate: the sum of a numeric expression, identical to the last bit
    whatever order the rows arrive in. A plain sum of doubles depends on the
    order in which threads combine partial sums, so a re-run could change the
    last digits of a mart. Each value's fraction is rounded to 18 decimal
    places (far below any precision the marts carry) and every part summed
    exactly as a decimal, then returned as a double. Values and sums must
    stay below 1e38 in magnitude. -#}
{% macro exact_sum(expression) -%}
    {{ return(adapter.dispatch('exact_sum', 'convo_warehouse')(expression)) }}
{%- endmacro %}

{#- Integer and fractional parts are summed separately, each exactly: the
    integer parts as decimal(38, 0) (values and sums up to 1e38), the
    fractions rounded to 18 decimal places as decimal(38, 18). -#}
{% macro default__exact_sum(expression) -%}
    (
        cast(sum(cast(round({{ expression }}, 0) as decimal(38, 0))) as {{ type_double() }})
        + cast(
            sum(cast({{ expression }} - round({{ expression }}, 0) as decimal(38, 18)))
            as {{ type_double() }}
        )
    )
{%- endmacro %}

{#- Aggregate: the mean of the non-null values of a numeric expression, as
    exact_sum() (same result in any row order); null when there are none. -#}
{% macro exact_avg(expression) -%}
    {{ exact_sum(expression) }} / nullif(count({{ expression }}), 0)
{%- endmacro %}
