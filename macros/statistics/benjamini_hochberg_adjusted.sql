{% macro benjamini_hochberg_adjusted(p_value, p_value_rank, family_tests, partition_by) -%}
    case
        when {{ p_value }} is not null
            then least(
                1.0,
                min({{ p_value }} * {{ family_tests }} / {{ p_value_rank }}) over (
                    partition by {{ partition_by }}
                    order by {{ p_value_rank }} desc
                    rows between unbounded preceding and current row
                )
            )
    end
{%- endmacro %}
