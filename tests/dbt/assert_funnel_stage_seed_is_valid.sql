{{ config(meta={'dagster': {'ref': {'name': 'stg_seeds__funnel_stages'}}}) }}

-- seeds/funnel_stages.csv must describe well-formed funnels: one order per
-- stage and one stage per order, a value where the rule needs one, flags we
-- know, markers that are defined, event types of the vocabulary and one
-- reading (counting) per funnel.
{%- set marker_literals = ["'(no marker)'"] %}
{%- for marker_name in funnel_markers().keys() | sort %}
    {%- do marker_literals.append(funnel_sql_literal(marker_name)) %}
{%- endfor %}

with

stage_rules as (
    select
        funnel_name,
        stage_order,
        stage,
        reached_by,
        reached_by_value,
        counting
    from {{ ref('stg_seeds__funnel_stages') }}
),

event_types as (
    select event_type
    from {{ ref('event_types') }}
),

stages_with_several_orders as (
    select
        stage_rules.funnel_name,
        stage_rules.stage,
        'stage has several stage_order values' as problem
    from stage_rules
    group by stage_rules.funnel_name, stage_rules.stage
    having count(distinct stage_rules.stage_order) > 1
),

orders_with_several_stages as (
    select
        stage_rules.funnel_name,
        min(stage_rules.stage) as stage,  -- noqa: RF04
        'stage_order ' || cast(stage_rules.stage_order as {{ dbt.type_string() }}) || ' has several stages' as problem
    from stage_rules
    group by stage_rules.funnel_name, stage_rules.stage_order
    having count(distinct stage_rules.stage) > 1
),

rules_with_bad_values as (
    select
        stage_rules.funnel_name,
        stage_rules.stage,
        'reached_by ' || stage_rules.reached_by || ' has an unusable value: '
        || coalesce(stage_rules.reached_by_value, '(empty)') as problem
    from stage_rules
    left join event_types
        on stage_rules.reached_by_value = event_types.event_type
    where
        (stage_rules.reached_by = 'event_type' and event_types.event_type is null)
        or (
            stage_rules.reached_by = 'flag'
            and coalesce(stage_rules.reached_by_value, '') not in (
                'initialized', 'started', 'engaged', 'responded', 'completed', 'converted'
            )
        )
        or (
            stage_rules.reached_by = 'marker'
            and coalesce(stage_rules.reached_by_value, '') not in ({{ marker_literals | join(', ') }})
        )
),

duplicated_rules as (
    select
        stage_rules.funnel_name,
        stage_rules.stage,
        'the same rule appears more than once' as problem
    from stage_rules
    group by
        stage_rules.funnel_name,
        stage_rules.stage,
        stage_rules.reached_by,
        stage_rules.reached_by_value
    having count(*) > 1
),

funnels_with_several_readings as (
    select
        stage_rules.funnel_name,
        min(stage_rules.stage) as stage,  -- noqa: RF04
        'the funnel has several counting values: '
        || min(stage_rules.counting) || ', ' || max(stage_rules.counting) as problem
    from stage_rules
    group by stage_rules.funnel_name
    having count(distinct stage_rules.counting) > 1
),

problems as (
    select * from stages_with_several_orders
    union all
    select * from orders_with_several_stages
    union all
    select * from rules_with_bad_values
    union all
    select * from duplicated_rules
    union all
    select * from funnels_with_several_readings
)

select * from problems
