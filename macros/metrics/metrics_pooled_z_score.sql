{#- Two-proportion z-score of rate - other_rate with the pooled standard
    error; null when other_sample_size is 0 or the pooled rate is 0 or 1
    (se = 0). Arguments are SQL expressions of doubles. The SQL twin of the
    z-score of lib/experiments.compare_proportions (tests/warehouse/test_statistics_sql_equals_python.py
    proves they agree). -#}
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
