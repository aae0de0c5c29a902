-- One row per comparison x segment x scope x depth x step tested for
-- divergence: how many successful and how many failed conversations of the
-- comparison's population have the step, and the two group sizes;
-- path_divergence_scored adds the statistics. A comparison is a population
-- of finished conversations (fct_conversation_paths.outcome not
-- `in_progress`), each successful or not:
--   overall / all / all                 started conversations, success =
--                                       fct_conversation_paths.is_successful;
--   overall / experiment:<test> / <v>   the same, exposed to variant v of the
--                                       test (non-contaminated exposures);
--   funnel:<name> / all / all           conversations that reached the
--                                       funnel's first stage, success =
--                                       reached its last stage.
-- A population needs both groups; a step (or a step at a depth) needs
-- var('divergence_min_conversations') conversations of the population; steps
-- matching var('divergence_excluded_step_pattern') are not candidates.
--
-- Counting every step row once per population it falls in multiplies the
-- history's steps by the populations a conversation belongs to, so the steps
-- are counted once per membership *signature* (the populations a
-- conversation belongs to and its group in each, a few hundred distinct at
-- most in practice) and the counts then spread to the populations of each
-- signature.
{%- set excluded_step_pattern = var('divergence_excluded_step_pattern') %}
{%- set max_depth = var('divergence_max_depth') | int %}

with

paths as (
    select
        conversation_id,
        outcome,
        started,
        is_successful
    from {{ ref('fct_conversation_paths') }}
),

steps as (
    select
        conversation_id,
        step_number,
        step,
        is_first_occurrence
    from {{ ref('int_conversation_steps_cleaned') }}
),

stages_reached as (
    select
        conversation_id,
        funnel_name,
        stage
    from {{ ref('fct_conversation_stages') }}
),

funnel_stages as (
    select
        funnel_name,
        stage,
        is_first_stage,
        is_last_stage
    from {{ ref('int_funnel_stages_ordered') }}
),

exposures as (
    select
        test_name,
        variant,
        conversation_id
    from {{ ref('ab_test_exposures') }}
    where variant_count = 1
),

finished_conversations as (
    select
        paths.conversation_id,
        paths.started,
        paths.is_successful
    from paths
    where paths.outcome != 'in_progress'
),

funnel_ends as (
    select
        funnel_stages.funnel_name,
        max(case when funnel_stages.is_first_stage then funnel_stages.stage end) as first_stage,
        max(case when funnel_stages.is_last_stage then funnel_stages.stage end) as last_stage
    from funnel_stages
    group by funnel_stages.funnel_name
),

funnel_memberships as (
    select
        {{ dbt.concat(["'funnel:'", 'funnel_ends.funnel_name']) }} as comparison,
        'all' as segment_type,
        'all' as segment_value,
        stages_reached.conversation_id,
        max(case when stages_reached.stage = funnel_ends.last_stage then 1 else 0 end) = 1 as is_successful
    from stages_reached
    inner join funnel_ends
        on
            stages_reached.funnel_name = funnel_ends.funnel_name
            and stages_reached.stage in (funnel_ends.first_stage, funnel_ends.last_stage)
    inner join finished_conversations
        on stages_reached.conversation_id = finished_conversations.conversation_id
    group by
        funnel_ends.funnel_name,
        stages_reached.conversation_id
    having max(case when stages_reached.stage = funnel_ends.first_stage then 1 else 0 end) = 1
),

-- One row per population and conversation in it.
memberships as (
    select
        'overall' as comparison,
        'all' as segment_type,
        'all' as segment_value,
        finished_conversations.conversation_id,
        finished_conversations.is_successful
    from finished_conversations
    where finished_conversations.started

    union all

    select
        'overall' as comparison,
        {{ dbt.concat(["'experiment:'", 'exposures.test_name']) }} as segment_type,
        exposures.variant as segment_value,
        finished_conversations.conversation_id,
        finished_conversations.is_successful
    from finished_conversations
    inner join exposures
        on finished_conversations.conversation_id = exposures.conversation_id
    where finished_conversations.started

    union all

    select
        funnel_memberships.comparison,
        funnel_memberships.segment_type,
        funnel_memberships.segment_value,
        funnel_memberships.conversation_id,
        funnel_memberships.is_successful
    from funnel_memberships
),

populations as (
    select
        memberships.comparison,
        memberships.segment_type,
        memberships.segment_value,
        sum(case when memberships.is_successful then 1 else 0 end) as successful_conversations,
        sum(case when memberships.is_successful then 0 else 1 end) as failed_conversations,
        row_number() over (
            order by memberships.comparison, memberships.segment_type, memberships.segment_value
        ) as population_number
    from memberships
    group by
        memberships.comparison,
        memberships.segment_type,
        memberships.segment_value
),

memberships_numbered as (
    select
        memberships.conversation_id,
        populations.population_number,
        memberships.is_successful
    from memberships
    inner join populations
        on
            memberships.comparison = populations.comparison
            and memberships.segment_type = populations.segment_type
            and memberships.segment_value = populations.segment_value
),

-- A conversation's signature: its populations and its group in each,
-- e.g. `2,7,12` (population 1 successful, 3 failed, 6 failed).
conversation_signatures as (
    select
        memberships_numbered.conversation_id,
        {{ string_agg_ordered(
            'cast(2 * memberships_numbered.population_number'
            ~ ' + case when memberships_numbered.is_successful then 0 else 1 end as ' ~ dbt.type_string() ~ ')',
            "','",
            'memberships_numbered.population_number'
        ) }} as signature
    from memberships_numbered
    group by memberships_numbered.conversation_id
),

signatures as (
    select
        distinct_signatures.signature,
        row_number() over (order by distinct_signatures.signature) as signature_number
    from (
        select distinct conversation_signatures.signature
        from conversation_signatures
    ) as distinct_signatures
),

conversations_signed as (
    select
        conversation_signatures.conversation_id,
        signatures.signature_number
    from conversation_signatures
    inner join signatures
        on conversation_signatures.signature = signatures.signature
),

signature_memberships as (
    select distinct
        conversations_signed.signature_number,
        memberships_numbered.population_number,
        memberships_numbered.is_successful
    from memberships_numbered
    inner join conversations_signed
        on memberships_numbered.conversation_id = conversations_signed.conversation_id
),

-- Per signature, step and depth (null past max_depth): the step rows and
-- the conversations whose first occurrence of the step it is.
steps_per_signature as (
    select
        conversations_signed.signature_number,
        steps.step,
        case when steps.step_number <= {{ max_depth }} then steps.step_number end as depth,  -- noqa: RF04
        count(*) as step_rows,
        sum(case when steps.is_first_occurrence then 1 else 0 end) as first_occurrences
    from steps
    inner join conversations_signed
        on steps.conversation_id = conversations_signed.conversation_id
    where not {{ regex_contains('steps.step', string_literal(excluded_step_pattern)) }}
    group by
        conversations_signed.signature_number,
        steps.step,
        case when steps.step_number <= {{ max_depth }} then steps.step_number end
),

-- Conversations with the step anywhere in the path (depth null), and at
-- each depth (a conversation has one step per depth).
step_presence as (
    select
        steps_per_signature.signature_number,
        'anywhere' as scope,
        cast(null as {{ dbt.type_int() }}) as depth,  -- noqa: RF04
        steps_per_signature.step,
        sum(steps_per_signature.first_occurrences) as conversations
    from steps_per_signature
    group by
        steps_per_signature.signature_number,
        steps_per_signature.step

    union all

    select
        steps_per_signature.signature_number,
        'at_depth' as scope,
        steps_per_signature.depth,
        steps_per_signature.step,
        steps_per_signature.step_rows as conversations
    from steps_per_signature
    where steps_per_signature.depth is not null
),

steps_counted as (
    select
        signature_memberships.population_number,
        step_presence.scope,
        step_presence.depth,
        step_presence.step,
        sum(case when signature_memberships.is_successful then step_presence.conversations else 0 end)
            as successful_with_step,
        sum(case when signature_memberships.is_successful then 0 else step_presence.conversations end)
            as failed_with_step
    from step_presence
    inner join signature_memberships
        on step_presence.signature_number = signature_memberships.signature_number
    group by
        signature_memberships.population_number,
        step_presence.scope,
        step_presence.depth,
        step_presence.step
    having sum(step_presence.conversations) >= {{ var('divergence_min_conversations') | int }}
),

final as (
    select
        cast(populations.comparison as {{ dbt.type_string() }}) as comparison,
        cast(populations.segment_type as {{ dbt.type_string() }}) as segment_type,
        cast(populations.segment_value as {{ dbt.type_string() }}) as segment_value,
        cast(steps_counted.scope as {{ dbt.type_string() }}) as scope,
        cast(steps_counted.depth as {{ dbt.type_int() }}) as depth,  -- noqa: RF04
        cast(steps_counted.step as {{ dbt.type_string() }}) as step,
        cast(steps_counted.successful_with_step as {{ dbt.type_bigint() }}) as successful_with_step,
        cast(populations.successful_conversations as {{ dbt.type_bigint() }}) as successful_conversations,
        cast(steps_counted.failed_with_step as {{ dbt.type_bigint() }}) as failed_with_step,
        cast(populations.failed_conversations as {{ dbt.type_bigint() }}) as failed_conversations
    from steps_counted
    inner join populations
        on steps_counted.population_number = populations.population_number
    where
        populations.successful_conversations > 0
        and populations.failed_conversations > 0
)

select * from final
