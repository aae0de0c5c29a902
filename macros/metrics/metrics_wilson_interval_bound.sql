{#- One bound of the Wilson score interval of a rate: side '-' for the lower,
    '+' for the upper bound. The SQL twin of lib/experiments.wilson_interval
    (tests/test_statistics_sql.py proves they agree). -#}
{% macro metrics_wilson_interval_bound(rate, sample_size, side, z=1.959964) %}
    {%- if side not in ['-', '+'] %}
        {{ exceptions.raise_compiler_error("metrics_wilson_interval_bound: side must be '-' or '+', not " ~ side) }}
    {%- endif %}
    (
        {{ rate }} + {{ z }} * {{ z }} / (2.0 * {{ sample_size }})
        {{ side }} {{ z }} * sqrt(
            {{ rate }} * (1.0 - {{ rate }}) / {{ sample_size }}
            + {{ z }} * {{ z }} / (4.0 * {{ sample_size }} * {{ sample_size }})
        )
    ) / (1.0 + {{ z }} * {{ z }} / {{ sample_size }})
{%- endmacro %}
