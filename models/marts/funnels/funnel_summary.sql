{{ config(materialized='view') }}
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

stage_days as (
    select
        funnel_name,
        stage,
        reached,
        reached_in_order,
        entered,
        timed_conversations,
        seconds_from_previous_stage_whole,
        seconds_from_previous_stage_fraction,
        dropped_here,
        window_open_here
    from {{ ref('int_funnel_stage_days_counted') }}
),

stage_time_buckets as (
    select
        funnel_name,
        stage,
        seconds_bucket,
        timed_conversations,
        min_seconds,
        max_seconds,
        timed_from_first_stage,
        min_seconds_from_first_stage,
        max_seconds_from_first_stage
    from {{ ref('int_funnel_stage_seconds_bucketed') }}
),

conversation_days as (
    select conversations
    from {{ ref('int_conversation_days_counted') }}
),

conversations as (
    select cast(coalesce(sum(conversation_days.conversations), 0) as {{ dbt.type_bigint() }}) as conversations
    from conversation_days
),

stages_counted as (
    select
        stage_days.funnel_name,
        stage_days.stage,
        sum(stage_days.reached) as reached,
        sum(stage_days.reached_in_order) as reached_in_order,
        sum(stage_days.entered) as entered,
        {{ exact_sum_of_parts(
            'sum(stage_days.seconds_from_previous_stage_whole)',
            'sum(stage_days.seconds_from_previous_stage_fraction)',
        ) }} / nullif(sum(stage_days.timed_conversations), 0) as avg_seconds_from_previous_stage,
        sum(stage_days.dropped_here) as stopped_here,
        sum(stage_days.window_open_here) as window_open_here
    from stage_days
    group by
        stage_days.funnel_name,
        stage_days.stage
),

-- the two histograms (seconds from the previous stage, from the first stage)
-- as rows of one
stage_time_buckets_unpivoted as (
    select
        stage_time_buckets.funnel_name,
        stage_time_buckets.stage,
        'previous_stage' as measured_from,
        stage_time_buckets.seconds_bucket,
        stage_time_buckets.timed_conversations,
        stage_time_buckets.min_seconds,
        stage_time_buckets.max_seconds
    from stage_time_buckets
    where stage_time_buckets.timed_conversations > 0

    union all

    select
        stage_time_buckets.funnel_name,
        stage_time_buckets.stage,
        'first_stage' as measured_from,
        stage_time_buckets.seconds_bucket,
        stage_time_buckets.timed_from_first_stage as timed_conversations,
        stage_time_buckets.min_seconds_from_first_stage as min_seconds,
        stage_time_buckets.max_seconds_from_first_stage as max_seconds
    from stage_time_buckets
    where stage_time_buckets.timed_from_first_stage > 0
),

-- the median from the histogram summed over the days: the middle value (or
-- the mean of the two middle values) is stood for by its bucket's value
buckets_summed as (
    select
        stage_time_buckets_unpivoted.funnel_name,
        stage_time_buckets_unpivoted.stage,
        stage_time_buckets_unpivoted.measured_from,
        stage_time_buckets_unpivoted.seconds_bucket,
        sum(stage_time_buckets_unpivoted.timed_conversations) as timed_conversations,
        min(stage_time_buckets_unpivoted.min_seconds) as min_seconds,
        max(stage_time_buckets_unpivoted.max_seconds) as max_seconds
    from stage_time_buckets_unpivoted
    group by
        stage_time_buckets_unpivoted.funnel_name,
        stage_time_buckets_unpivoted.stage,
        stage_time_buckets_unpivoted.measured_from,
        stage_time_buckets_unpivoted.seconds_bucket
),

buckets_ranked as (
    select
        buckets_summed.funnel_name,
        buckets_summed.stage,
        buckets_summed.measured_from,
        {{ log_bucket_value(
            'buckets_summed.seconds_bucket', 'buckets_summed.min_seconds', 'buckets_summed.max_seconds'
        ) }} as bucket_seconds,
        -- the bucket holds the ranks after rank_before up to rank_through
        sum(buckets_summed.timed_conversations) over (
            partition by buckets_summed.funnel_name, buckets_summed.stage, buckets_summed.measured_from
            order by buckets_summed.seconds_bucket
            rows between unbounded preceding and current row
        ) - buckets_summed.timed_conversations as rank_before,
        sum(buckets_summed.timed_conversations) over (
            partition by buckets_summed.funnel_name, buckets_summed.stage, buckets_summed.measured_from
            order by buckets_summed.seconds_bucket
            rows between unbounded preceding and current row
        ) as rank_through,
        sum(buckets_summed.timed_conversations) over (
            partition by buckets_summed.funnel_name, buckets_summed.stage, buckets_summed.measured_from
        ) as timed_conversations
    from buckets_summed
),

-- of ranks 1..n the middle ones are floor((n + 1) / 2) and floor(n / 2) + 1
-- (one rank when n is odd), as quantile_cont(0.5) interpolates
stage_medians_measured as (
    select
        buckets_ranked.funnel_name,
        buckets_ranked.stage,
        buckets_ranked.measured_from,
        (
            max(
                case
                    when
                        floor((buckets_ranked.timed_conversations + 1) / 2.0) > buckets_ranked.rank_before
                        and floor((buckets_ranked.timed_conversations + 1) / 2.0) <= buckets_ranked.rank_through
                        then buckets_ranked.bucket_seconds
                end
            )
            + max(
                case
                    when
                        floor(buckets_ranked.timed_conversations / 2.0) + 1 > buckets_ranked.rank_before
                        and floor(buckets_ranked.timed_conversations / 2.0) + 1 <= buckets_ranked.rank_through
                        then buckets_ranked.bucket_seconds
                end
            )
        ) / 2.0 as median_seconds
    from buckets_ranked
    group by
        buckets_ranked.funnel_name,
        buckets_ranked.stage,
        buckets_ranked.measured_from
),

stage_medians as (
    select
        stage_medians_measured.funnel_name,
        stage_medians_measured.stage,
        max(
            case
                when stage_medians_measured.measured_from = 'previous_stage' then stage_medians_measured.median_seconds
            end
        ) as median_seconds_from_previous_stage,
        max(
            case
                when stage_medians_measured.measured_from = 'first_stage' then stage_medians_measured.median_seconds
            end
        ) as median_seconds_from_first_stage
    from stage_medians_measured
    group by
        stage_medians_measured.funnel_name,
        stage_medians_measured.stage
),

stages_with_counts as (
    select
        funnel_stages.funnel_name,
        funnel_stages.stage,
        funnel_stages.stage_order,
        funnel_stages.previous_stage,
        funnel_stages.is_first_stage,
        funnel_stages.counting,
        coalesce(stages_counted.entered, 0) as entered,
        coalesce(stages_counted.reached, 0) as reached,
        coalesce(stages_counted.reached_in_order, 0) as reached_in_order,
        stages_counted.avg_seconds_from_previous_stage,
        stage_medians.median_seconds_from_previous_stage,
        stage_medians.median_seconds_from_first_stage,
        coalesce(stages_counted.stopped_here, 0) as stopped_here,
        coalesce(stages_counted.window_open_here, 0) as window_open_here,
        conversations.conversations as all_conversations
    from funnel_stages
    left join stages_counted
        on
            funnel_stages.funnel_name = stages_counted.funnel_name
            and funnel_stages.stage = stages_counted.stage
    left join stage_medians
        on
            funnel_stages.funnel_name = stage_medians.funnel_name
            and funnel_stages.stage = stage_medians.stage
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
        cast(stages_rated.counting as {{ dbt.type_string() }}) as counting,
        cast(stages_rated.median_seconds_from_first_stage as {{ type_double() }})
            as median_seconds_from_first_stage
    from stages_rated
)

select * from funnel_summary
