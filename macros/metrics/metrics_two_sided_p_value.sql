{#- Two-sided p-value 2 * (1 - Phi(|z|)) of a standard normal z, in plain SQL
    (no erf on most engines): Abramowitz & Stegun 26.2.17,
    1 - Phi(x) = phi(x) * (b1 t + b2 t^2 + b3 t^3 + b4 t^4 + b5 t^5),
    t = 1 / (1 + 0.2316419 x), x >= 0, absolute error below 7.5e-8.
    Null when z is null. -#}
{% macro metrics_two_sided_p_value(z_expression) %}
    (
        2.0 * exp(-0.5 * abs({{ z_expression }}) * abs({{ z_expression }})) / sqrt(2.0 * pi())
        * (
            0.319381530 * (1.0 / (1.0 + 0.2316419 * abs({{ z_expression }})))
            - 0.356563782 * power(1.0 / (1.0 + 0.2316419 * abs({{ z_expression }})), 2)
            + 1.781477937 * power(1.0 / (1.0 + 0.2316419 * abs({{ z_expression }})), 3)
            - 1.821255978 * power(1.0 / (1.0 + 0.2316419 * abs({{ z_expression }})), 4)
            + 1.330274429 * power(1.0 / (1.0 + 0.2316419 * abs({{ z_expression }})), 5)
        )
    )
{%- endmacro %}
