{#- The Benjamini-Hochberg adjusted p-value of each test of a family (the
    rows of one `partition_by`), as a window expression over rows that carry
    their p-value's rank in the family (1 = smallest; rows without a p-value
    ranked after every other) and the family's number of tests (p-values not
    null): for the i-th smallest of m, min over j >= i of m * p_(j) / j,
    capped at 1. A test is significant at level q when its adjusted p-value
    is below q, which keeps the expected share of false discoveries among
    the significant ones at q. Equal p-values get equal adjusted values in
    whatever order the ties were ranked. Null where the p-value is null. -#}
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
