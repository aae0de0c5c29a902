{#- Aggregate: the sum of a numeric expression, identical to the last bit
    whatever order the rows arrive in. A plain sum of doubles depends on the
    order in which threads combine partial sums, so a re-run could change the
    last digits of a mart. Each value is rounded to 18 decimal places (far
    below any precision the marts carry) and summed exactly as a decimal,
    then returned as a double. Values and sums must stay below 1e20 in
    magnitude (durations, milliseconds and scores do by many orders). -#}
{% macro exact_sum(expression) -%}
    {{ return(adapter.dispatch('exact_sum', 'convo_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__exact_sum(expression) -%}
    cast(sum(cast({{ expression }} as decimal(38, 18))) as {{ metrics_type_double() }})
{%- endmacro %}

{#- Aggregate: the mean of the non-null values of a numeric expression, as
    exact_sum() (same result in any row order); null when there are none. -#}
{% macro exact_avg(expression) -%}
    {{ exact_sum(expression) }} / nullif(count({{ expression }}), 0)
{%- endmacro %}
