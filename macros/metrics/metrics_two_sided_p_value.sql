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
