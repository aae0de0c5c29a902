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
