{#- The previous stage's and the first stage's `reached` of every row of
    `relation` (one row per stage of a funnel, within `partition_by`), as
    columns previous_stage_reached and first_stage_reached, and the previous
    stage's `reached_in_order` as previous_stage_reached_in_order. -#}
{% macro funnel_stage_neighbours(relation, partition_by) -%}
    {%- set partition = [] -%}
    {%- for column in partition_by -%}
        {%- do partition.append(relation ~ '.' ~ column) -%}
    {%- endfor -%}
    lag({{ relation }}.reached) over (
        partition by {{ partition | join(', ') }}
        order by {{ relation }}.stage_order
    ) as previous_stage_reached,
    lag({{ relation }}.reached_in_order) over (
        partition by {{ partition | join(', ') }}
        order by {{ relation }}.stage_order
    ) as previous_stage_reached_in_order,
    first_value({{ relation }}.reached) over (
        partition by {{ partition | join(', ') }}
        order by {{ relation }}.stage_order
        rows between unbounded preceding and current row
    ) as first_stage_reached
{%- endmacro %}
