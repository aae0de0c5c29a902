{{ config(
    unique_key=['test_name', 'conversation_id'],
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}
-- One row per test and conversation exposed to it: the first exposure (by
-- timestamp, then event_id) gives the variant; variant_count > 1 marks a
-- contaminated conversation; expected_variant recomputes the applications'
-- sha256 assignment rule (macro hash_bucket) over the test's variants from the
-- experiments seed in variant_order, and assignment_ok compares the two.
-- Incremental, keyed by test and conversation: a run recomputes the
-- conversations with newly loaded events (scope_conversations); a
-- changed experiments seed rebuilds every row (dbt's state comparison:
-- docs/incremental.md).

{%- set events_in_scope, staged_events = ref('scope_events'), ref('stg_events') %}

with

conversations_in_scope as (  -- noqa: ST03
    select conversation_id from {{ ref('scope_conversations') }}
),

exposure_events as (
    select
        event_id,
        conversation_id,
        test_name,
        variant,
        event_at
    from {{ events_in_scope if is_incremental() else staged_events }}
    where
        event_type = 'experiment_exposure'
        and is_known_type
        and test_name is not null
        and variant is not null
),

conversations as (
    select
        conversation_id,
        user_id
    from {{ ref('fct_conversations') }}
    {%- if is_incremental() %}
    where conversation_id in (select conversations_in_scope.conversation_id from conversations_in_scope)
    {%- endif %}
),

experiments as (
    select
        test_name,
        variant,
        variant_order
    from {{ ref('stg_seeds__experiments') }}
),

-- the assignment rule's list: the seed's variants in variant_order, 0-based
experiment_variant_positions as (
    select
        experiments.test_name,
        experiments.variant,
        row_number() over (
            partition by experiments.test_name
            order by experiments.variant_order, experiments.variant
        ) - 1 as variant_position,
        count(*) over (partition by experiments.test_name) as variant_total
    from experiments
),

experiment_sizes as (
    select distinct
        experiment_variant_positions.test_name,
        experiment_variant_positions.variant_total
    from experiment_variant_positions
),

exposures_ranked as (
    select
        exposure_events.test_name,
        exposure_events.conversation_id,
        exposure_events.variant,
        exposure_events.event_at,
        row_number() over (
            partition by exposure_events.test_name, exposure_events.conversation_id
            order by exposure_events.event_at, exposure_events.event_id
        ) as exposure_rank
    from exposure_events
),

variants_seen as (
    select
        exposure_events.test_name,
        exposure_events.conversation_id,
        count(distinct exposure_events.variant) as variant_count
    from exposure_events
    group by exposure_events.test_name, exposure_events.conversation_id
),

first_exposures as (
    select
        exposures_ranked.test_name,
        exposures_ranked.conversation_id,
        exposures_ranked.variant,
        exposures_ranked.event_at as first_exposed_at,
        variants_seen.variant_count
    from exposures_ranked
    inner join variants_seen
        on
            exposures_ranked.test_name = variants_seen.test_name
            and exposures_ranked.conversation_id = variants_seen.conversation_id
    where exposures_ranked.exposure_rank = 1
),

first_exposures_bucketed as (
    select
        first_exposures.*,
        {{ hash_bucket(
            "first_exposures.test_name || ':' || first_exposures.conversation_id",
            "experiment_sizes.variant_total"
        ) }} as expected_position
    from first_exposures
    left join experiment_sizes
        on first_exposures.test_name = experiment_sizes.test_name
),

exposures_checked as (
    select
        first_exposures_bucketed.test_name,
        first_exposures_bucketed.conversation_id,
        conversations.user_id,
        first_exposures_bucketed.variant,
        first_exposures_bucketed.first_exposed_at,
        first_exposures_bucketed.variant_count,
        experiment_variant_positions.variant as expected_variant,
        case
            when experiment_variant_positions.variant is null then null
            else first_exposures_bucketed.variant = experiment_variant_positions.variant
        end as assignment_ok
    from first_exposures_bucketed
    left join experiment_variant_positions
        on
            first_exposures_bucketed.test_name = experiment_variant_positions.test_name
            and first_exposures_bucketed.expected_position
            = experiment_variant_positions.variant_position
    left join conversations
        on first_exposures_bucketed.conversation_id = conversations.conversation_id
)

{{ select_with_conversation_date('exposures_checked') }}
