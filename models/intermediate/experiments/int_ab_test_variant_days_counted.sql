{#- One row per conversation_date x test x variant (as first exposed,
    whether or not the seed has it) x segment (all, and the conversation's
    channel): the day's partial counts of the experiment marts. A
    conversation counts in the day of its conversation_date; the whole-test
    numbers are sums of these rows (int_ab_test_variants_aggregated,
    int_ab_test_exposure_quality). Replaced day by day, like
    int_ab_test_conversations_measured: a run rewrites the days holding a
    conversation in scope, so a conversation's old contribution (its old
    day too, when a late event moved it) is replaced by its new one.
    Contaminated conversations are exposures but no sessions: their
    conversions and values count nowhere. Means and variances are kept as
    exact sums (exact_moments.sql), added up over days and divided in
    Python. -#}
{{ config(
    unique_key=['conversation_date', 'test_name', 'variant', 'segment_type', 'segment_value'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set scope_days = ref('scope_days') %}

with

exposures as (
    select
        conversation_date,
        test_name,
        variant,
        channel,
        is_contaminated,
        assignment_ok,
        converted_after_exposure,
        was_completed,
        had_handoff,
        satisfaction_score,
        first_response_ms,
        quality_score
    from {{ ref('int_ab_test_conversations_measured') }}
    {%- if is_incremental() %}
    where {{ on_scope_days('conversation_date', scope_days) }}
    {%- endif %}
),

exposures_segmented as (
    select
        exposures.*,
        'all' as segment_type,
        'all' as segment_value
    from exposures
    union all
    select
        exposures.*,
        'channel' as segment_type,
        exposures.channel as segment_value
    from exposures
),

sessions_limbed as (
    select
        exposures_segmented.*,
        {{ exact_limbs(
            'case when not exposures_segmented.is_contaminated then exposures_segmented.satisfaction_score end',
            'satisfaction'
        ) }},
        {{ exact_limbs(
            'case when not exposures_segmented.is_contaminated then exposures_segmented.first_response_ms end',
            'first_response'
        ) }},
        {{ exact_limbs(
            'case when not exposures_segmented.is_contaminated then exposures_segmented.quality_score end',
            'quality'
        ) }}
    from exposures_segmented
),

variant_days_counted as (
    select
        sessions_limbed.conversation_date,
        sessions_limbed.test_name,
        sessions_limbed.variant,
        sessions_limbed.segment_type,
        sessions_limbed.segment_value,
        count(*) as exposed_conversations,
        count(case when sessions_limbed.is_contaminated then 1 end) as contaminated_conversations,
        count(case when not sessions_limbed.assignment_ok then 1 end) as assignment_mismatches,
        count(case when not sessions_limbed.is_contaminated then 1 end) as sessions,
        count(
            case when not sessions_limbed.is_contaminated and sessions_limbed.converted_after_exposure then 1 end
        ) as conversions,
        count(
            case when not sessions_limbed.is_contaminated and sessions_limbed.was_completed then 1 end
        ) as completions,
        count(
            case when not sessions_limbed.is_contaminated and sessions_limbed.had_handoff then 1 end
        ) as handoffs,
        {{ exact_moment_sums('sessions_limbed', 'satisfaction') }},
        {{ exact_moment_sums('sessions_limbed', 'first_response') }},
        {{ exact_moment_sums('sessions_limbed', 'quality') }}
    from sessions_limbed
    group by
        sessions_limbed.conversation_date,
        sessions_limbed.test_name,
        sessions_limbed.variant,
        sessions_limbed.segment_type,
        sessions_limbed.segment_value
)

select * from variant_days_counted
