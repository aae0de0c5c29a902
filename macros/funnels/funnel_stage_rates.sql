{% macro funnel_stage_rates(relation) -%}
    case
        when {{ relation }}.is_first_stage
            then
                cast({{ relation }}.reached as {{ type_double() }})
                / nullif({{ relation }}.all_conversations, 0)
        else
            cast({{ relation }}.reached as {{ type_double() }})
            / nullif({{ relation }}.previous_stage_reached, 0)
    end as conversion_rate,
    cast({{ relation }}.reached as {{ type_double() }})
    / nullif({{ relation }}.first_stage_reached, 0) as conversion_from_start,
    case
        when {{ relation }}.is_first_stage then {{ relation }}.all_conversations
        else {{ relation }}.previous_stage_reached
    end as conversion_rate_sample,
    case
        when {{ relation }}.is_first_stage then 0
        else {{ relation }}.previous_stage_reached - {{ relation }}.reached
    end as drop_off,
    case
        when {{ relation }}.is_first_stage then null
        else
            cast(
                {{ relation }}.previous_stage_reached - {{ relation }}.reached
                as {{ type_double() }}
            )
            / nullif({{ relation }}.previous_stage_reached, 0)
    end as drop_off_rate,
    coalesce(
        not {{ relation }}.is_first_stage
        and cast(
            {{ relation }}.previous_stage_reached - {{ relation }}.reached
            as {{ type_double() }}
        )
        / nullif({{ relation }}.previous_stage_reached, 0)
        > {{ var('funnel_major_drop_off_threshold') }},
        false
    ) as is_major_drop_off,
    cast({{ var('funnel_major_drop_off_threshold') }} as {{ type_double() }})
        as major_drop_off_threshold,
    case
        when {{ relation }}.is_first_stage
            then
                cast({{ relation }}.reached as {{ type_double() }})
                / nullif({{ relation }}.all_conversations, 0)
        else
            cast({{ relation }}.reached_in_order as {{ type_double() }})
            / nullif({{ relation }}.previous_stage_reached_in_order, 0)
    end as conversion_rate_in_order,
    case
        when {{ relation }}.is_first_stage then 0
        else {{ relation }}.previous_stage_reached_in_order - {{ relation }}.reached_in_order
    end as drop_off_in_order
{%- endmacro %}
