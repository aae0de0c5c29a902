{% macro exact_sum(expression) -%}
    {{ return(adapter.dispatch('exact_sum', 'convo_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__exact_sum(expression) -%}
    {{ exact_sum_of_parts(exact_sum_whole(expression), exact_sum_fraction(expression)) }}
{%- endmacro %}

{% macro exact_sum_whole(expression) -%}
    sum(cast(round({{ expression }}, 0) as decimal(38, 0)))
{%- endmacro %}

{% macro exact_sum_fraction(expression) -%}
    sum(cast({{ expression }} - round({{ expression }}, 0) as decimal(38, 18)))
{%- endmacro %}

{% macro exact_sum_of_parts(whole, fraction) -%}
    (
        cast({{ whole }} as {{ type_double() }})
        + cast({{ fraction }} as {{ type_double() }})
    )
{%- endmacro %}

{% macro exact_avg(expression) -%}
    {{ exact_sum(expression) }} / nullif(count({{ expression }}), 0)
{%- endmacro %}
