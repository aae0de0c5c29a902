{% macro metrics_segmented(conversations_cte, exposures_cte) %}
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
        {{ dbt.concat(["'experiment:'", "coalesce(" ~ exposures_cte ~ ".test_name, 'unknown')"]) }} as segment_type,
        coalesce(cast({{ exposures_cte }}.variant as {{ dbt.type_string() }}), 'unknown') as segment_value
    from {{ exposures_cte }}
    inner join {{ conversations_cte }}
        on {{ same_conversation(conversations_cte, exposures_cte, conversations_cte ~ '.metric_date') }}
    where coalesce({{ exposures_cte }}.variant_count, 0) <= 1  -- more: it saw several variants (contaminated)
),
{%- endmacro %}

{% macro metrics_segment_attributes() %}
    {#- environment (contract v1.3) lets a BI tool filter development traffic out -#}
    {{ return(['channel', 'agent_id', 'device', 'source', 'language', 'environment']) }}
{%- endmacro %}
