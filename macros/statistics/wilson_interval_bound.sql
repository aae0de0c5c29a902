{% macro wilson_interval_bound(rate, sample_size, bound) -%}
    {%- if bound not in ('low', 'high') -%}
        {{ exceptions.raise_compiler_error("wilson_interval_bound: bound must be 'low' or 'high', got " ~ bound) }}
    {%- endif -%}
    {%- set z_95 = 1.959964 -%}
    {%- set sign = '-' if bound == 'low' else '+' -%}
    {#- clipped to 0..1 (at a rate of 0 or 1 rounding can step just outside);
        greatest/least skip nulls on some engines, hence the case -#}
    case when {{ rate }} is not null and {{ sample_size }} > 0 then
    {{ 'greatest(0.0, ' if bound == 'low' else 'least(1.0, ' }}(
        {{ rate }} + {{ z_95 }} * {{ z_95 }} / (2.0 * nullif({{ sample_size }}, 0))
        {{ sign }} {{ z_95 }} * sqrt(
            {{ rate }} * (1.0 - {{ rate }}) / nullif({{ sample_size }}, 0)
            + {{ z_95 }} * {{ z_95 }} / (4.0 * nullif({{ sample_size }}, 0) * nullif({{ sample_size }}, 0))
        )
    ) / (1.0 + {{ z_95 }} * {{ z_95 }} / nullif({{ sample_size }}, 0)))
    end
{%- endmacro %}
