{% macro metrics_segmented(conversations_cte) %}
{%- set exposures = ref('int_ab_test_exposures_checked') %}
-- every conversation in `all`, in its value of each attribute and in the variant of each A/B test it saw
conversations_segmented as (
    select
        {{ conversations_cte }}.*,
        attribute_segment_types.segment_type,
        case attribute_segment_types.segment_type
            when 'all' then 'all'
            {%- for attribute in metrics_segment_attributes() %}
            when '{{ attribute }}' then {{ conversations_cte }}.{{ attribute }}
            {%- endfor %}
        end as segment_value
    from {{ conversations_cte }}
    cross join (values ('all'){% for attribute in metrics_segment_attributes() %}, ('{{ attribute }}'){% endfor %})
        as attribute_segment_types (segment_type)
    union all
    select
        {{ conversations_cte }}.*,
        {{ dbt.concat(["'experiment:'", "coalesce(exposures.test_name, 'unknown')"]) }} as segment_type,
        coalesce(cast(exposures.variant as {{ dbt.type_string() }}), 'unknown') as segment_value
    from {{ exposures }} as exposures
    inner join {{ conversations_cte }}
        on {{ same_conversation(conversations_cte, 'exposures', conversations_cte ~ '.metric_date') }}
    where coalesce(exposures.variant_count, 0) <= 1  -- more: it saw several variants (contaminated)
),
{%- endmacro %}

{% macro metrics_segment_attributes() %}
    {{ return(['channel', 'agent_id', 'device', 'source', 'language', 'environment']) }}
{%- endmacro %}
