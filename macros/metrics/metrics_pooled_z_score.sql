{% macro metrics_pooled_z_score(successes, sample_size, other_successes, other_sample_size) %}
    case
        when
            {{ other_sample_size }} > 0
            and ({{ successes }} + {{ other_successes }}) / ({{ sample_size }} + {{ other_sample_size }}) > 0
            and ({{ successes }} + {{ other_successes }}) / ({{ sample_size }} + {{ other_sample_size }}) < 1
            then ({{ successes }} / {{ sample_size }} - {{ other_successes }} / {{ other_sample_size }}) / sqrt(
                ({{ successes }} + {{ other_successes }}) / ({{ sample_size }} + {{ other_sample_size }})
                * (1.0 - ({{ successes }} + {{ other_successes }}) / ({{ sample_size }} + {{ other_sample_size }}))
                * (1.0 / {{ sample_size }} + 1.0 / {{ other_sample_size }})
            )
    end
{%- endmacro %}
