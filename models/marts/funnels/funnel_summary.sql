with

funnel_stages as (
    select
        funnel_name,
        stage,
        stage_order,
        previous_stage,
        is_first_stage,
        counting
    from {{ ref('int_funnel_stages_ordered') }}
),

conversation_funnel_stages as (
    select
        conversation_id,
        funnel_name,
        stage,
        is_reached,
        is_reached_in_order,
        seconds_from_previous_stage
    from {{ ref('int_conversation_stages_sequenced') }}
),

dropoffs as (
    select
        funnel_name,
        last_stage,
        window_open
    from {{ ref('funnel_dropoffs') }}
),

conversations as (
    select count(*) as conversations
    from {{ ref('int_conversations_summarized') }}
),

-- the funnel's population: conversations that reached any of its stages
-- (the sequenced model has rows only for those)
funnels_entered as (
    select
        conversation_funnel_stages.funnel_name,
        count(distinct conversation_funnel_stages.conversation_id) as entered
    from conversation_funnel_stages
    group by conversation_funnel_stages.funnel_name
),

stages_counted as (
    select
        conversation_funnel_stages.funnel_name,
        conversation_funnel_stages.stage,
        sum(case when conversation_funnel_stages.is_reached then 1 else 0 end) as reached,
        sum(case when conversation_funnel_stages.is_reached_in_order then 1 else 0 end) as reached_in_order,
        {{ exact_avg('conversation_funnel_stages.seconds_from_previous_stage') }}
            as avg_seconds_from_previous_stage,
        {{ funnel_median('conversation_funnel_stages.seconds_from_previous_stage') }}
            as median_seconds_from_previous_stage
    from conversation_funnel_stages
    group by
        conversation_funnel_stages.funnel_name,
        conversation_funnel_stages.stage
),

dropoffs_counted as (
    select
        dropoffs.funnel_name,
        dropoffs.last_stage as stage,  -- noqa: RF04
        sum(case when dropoffs.window_open then 0 else 1 end) as stopped_here,
        sum(case when dropoffs.window_open then 1 else 0 end) as window_open_here
    from dropoffs
    group by
        dropoffs.funnel_name,
        dropoffs.last_stage
),

stages_with_counts as (
    select
        funnel_stages.funnel_name,
        funnel_stages.stage,
        funnel_stages.stage_order,
        funnel_stages.previous_stage,
        funnel_stages.is_first_stage,
        funnel_stages.counting,
        coalesce(funnels_entered.entered, 0) as entered,
        coalesce(stages_counted.reached, 0) as reached,
        coalesce(stages_counted.reached_in_order, 0) as reached_in_order,
        stages_counted.avg_seconds_from_previous_stage,
        stages_counted.median_seconds_from_previous_stage,
        coalesce(dropoffs_counted.stopped_here, 0) as stopped_here,
        coalesce(dropoffs_counted.window_open_here, 0) as window_open_here,
        conversations.conversations as all_conversations
    from funnel_stages
    left join stages_counted
        on
            funnel_stages.funnel_name = stages_counted.funnel_name
            and funnel_stages.stage = stages_counted.stage
    left join dropoffs_counted
        on
            funnel_stages.funnel_name = dropoffs_counted.funnel_name
            and funnel_stages.stage = dropoffs_counted.stage
    left join funnels_entered
        on funnel_stages.funnel_name = funnels_entered.funnel_name
    cross join conversations
),

stages_with_neighbours as (
    select
        stages_with_counts.*,
        {{ funnel_stage_neighbours('stages_with_counts', ['funnel_name']) }}
    from stages_with_counts
),

stages_rated as (
    select
        stages_with_neighbours.*,
        {{ funnel_stage_rates('stages_with_neighbours') }}
    from stages_with_neighbours
),

funnel_summary as (
    select
        cast(stages_rated.funnel_name as {{ dbt.type_string() }}) as funnel_name,
        cast(stages_rated.stage as {{ dbt.type_string() }}) as stage,  -- noqa: RF04
        cast(stages_rated.stage_order as {{ dbt.type_int() }}) as stage_order,
        cast(stages_rated.reached as {{ dbt.type_bigint() }}) as reached,
        cast(stages_rated.conversion_rate as {{ type_double() }}) as conversion_rate,
        cast(stages_rated.conversion_from_start as {{ type_double() }}) as conversion_from_start,
        cast(stages_rated.drop_off as {{ dbt.type_bigint() }}) as drop_off,
        cast(stages_rated.previous_stage as {{ dbt.type_string() }}) as previous_stage,
        cast(stages_rated.reached_in_order as {{ dbt.type_bigint() }}) as reached_in_order,
        cast(stages_rated.drop_off_rate as {{ type_double() }}) as drop_off_rate,
        stages_rated.is_major_drop_off,
        cast(stages_rated.avg_seconds_from_previous_stage as {{ type_double() }})
            as avg_seconds_from_previous_stage,
        cast(stages_rated.median_seconds_from_previous_stage as {{ type_double() }})
            as median_seconds_from_previous_stage,
        cast(stages_rated.stopped_here as {{ dbt.type_bigint() }}) as dropped_here,
        cast(stages_rated.window_open_here as {{ dbt.type_bigint() }}) as window_open_here,
        cast(stages_rated.conversion_rate_sample as {{ dbt.type_bigint() }}) as conversion_rate_sample,
        coalesce(stages_rated.conversion_rate_sample, 0) < {{ var('funnel_min_sample') }} as is_small_sample,
        -- Wilson 95% interval of conversion_rate; null where skipped stages
        -- push the rate above 1 (not a proportion then)
        cast(
            case
                when stages_rated.conversion_rate <= 1
                    then {{ wilson_interval_bound(
                        'stages_rated.conversion_rate', 'stages_rated.conversion_rate_sample', 'low'
                    ) }}
            end as {{ type_double() }}
        ) as conversion_rate_ci_low,
        cast(
            case
                when stages_rated.conversion_rate <= 1
                    then {{ wilson_interval_bound(
                        'stages_rated.conversion_rate', 'stages_rated.conversion_rate_sample', 'high'
                    ) }}
            end as {{ type_double() }}
        ) as conversion_rate_ci_high,
        cast(stages_rated.conversion_rate_in_order as {{ type_double() }}) as conversion_rate_in_order,
        cast(stages_rated.drop_off_in_order as {{ dbt.type_bigint() }}) as drop_off_in_order,
        cast(stages_rated.entered as {{ dbt.type_bigint() }}) as entered,
        cast(stages_rated.counting as {{ dbt.type_string() }}) as counting
    from stages_rated
)

select * from funnel_summary
