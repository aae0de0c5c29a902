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
    {{ exact_sum_of_parts(exact_sum_whole(expression), exact_sum_fraction(expression)) }}
{%- endmacro %}

{#- The two exact parts of exact_sum(), as aggregates a partial stores (one
    sum per day, say): exact_sum_whole the sum of the values rounded to
    integers, as decimal(38, 0); exact_sum_fraction the sum of what rounding
    left, each rounded to 18 decimal places, as decimal(38, 18). Decimal
    sums are exact, so summing stored parts again gives the parts of the
    whole, and exact_sum_of_parts() of those is the double exact_sum() gives
    over every row, to the last bit. A partial that a variance is computed
    from keeps exact_moments.sql's parts instead (the squares do not fit
    these decimals). -#}
{% macro exact_sum_whole(expression) -%}
    sum(cast(round({{ expression }}, 0) as decimal(38, 0)))
{%- endmacro %}

{% macro exact_sum_fraction(expression) -%}
    sum(cast({{ expression }} - round({{ expression }}, 0) as decimal(38, 18)))
{%- endmacro %}

{#- The double of an exact sum from its two parts (exact_sum_whole,
    exact_sum_fraction, or sums of stored ones). -#}
{% macro exact_sum_of_parts(whole, fraction) -%}
    (
        cast({{ whole }} as {{ type_double() }})
        + cast({{ fraction }} as {{ type_double() }})
    )
{%- endmacro %}

{#- Aggregate: the mean of the non-null values of a numeric expression, as
    exact_sum() (same result in any row order); null when there are none. -#}
{% macro exact_avg(expression) -%}
    {{ exact_sum(expression) }} / nullif(count({{ expression }}), 0)
{%- endmacro %}
