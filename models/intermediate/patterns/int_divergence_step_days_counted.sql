{#- One row per conversation_date x divergence population (comparison x
    segment, int_divergence_memberships_listed) x scope x depth x candidate
    step: how many successful and how many failed conversations of the
    population and day have the step anywhere in their path (scope
    `anywhere`, depth null) or at that depth (`at_depth`, depths up to
    var('divergence_max_depth')); path_divergence_counted adds up the days.
    Steps matching var('divergence_excluded_step_pattern') are not
    candidates. A run rewrites every day holding a conversation in scope.

    Counting every step row once per population it falls in would multiply
    the steps by the populations a conversation belongs to, so the steps are
    counted once per day and membership *signature* (the populations a
    conversation belongs to and its group in each: a few hundred distinct at
    most in practice), and the counts then spread to the populations of each
    signature. -#}
{{ config(
    unique_key=['conversation_date', 'comparison', 'segment_type', 'segment_value', 'scope', 'depth', 'step'],
    scope_key='conversation_date',
    scope_model='scope_days',
    scope_column='event_date',
    partition_by=('conversation_date' if target.type == 'spark' else none),
) }}

{%- set excluded_step_pattern = var('divergence_excluded_step_pattern') %}
{%- set max_depth = var('divergence_max_depth') | int %}

{#- the days this run rewrites, as literals: the view read below computes only those days -#}
{%- set scope_days = ref('scope_days') %}

with

memberships as (
    select
        comparison,
        segment_type,
        segment_value,
        conversation_id,
        conversation_date,
        is_successful
    from {{ ref('int_divergence_memberships_listed') }}
    where
    {%- if is_incremental() %}
        {{ on_scope_days('conversation_date', scope_days) }}
        and
    {%- endif %}
        -- the view reads fct_conversation_paths once per kind of population,
        -- and three parts of the query read this: Spark computes it once
        {{ evaluated_once() }}
),

steps as (
    select
        conversation_id,
        step_number,
        step,
        is_first_occurrence
    from {{ ref('int_conversation_steps_cleaned') }}
),

-- Each membership with its population's number (populations numbered by
-- comparison and segment). Every CTE below reads the memberships through
-- this one and each other CTE as few times as it can: Spark writes a CTE
-- into the plan wherever it is read, and the view again with it.
memberships_numbered as (
    select
        memberships.conversation_id,
        memberships.conversation_date,
        memberships.comparison,
        memberships.segment_type,
        memberships.segment_value,
        dense_rank() over (
            order by
                memberships.comparison,
                memberships.segment_type,
                memberships.segment_value
        ) as population_number,
        memberships.is_successful
    from memberships
),

-- A conversation's signature: its populations and its group in each,
-- e.g. `2,7,12` (population 1 successful, 3 failed, 6 failed).
conversation_signatures as (
    select
        memberships_numbered.conversation_id,
        memberships_numbered.conversation_date,
        {{ string_agg_ordered(
            'cast(2 * memberships_numbered.population_number'
            ~ ' + case when memberships_numbered.is_successful then 0 else 1 end as ' ~ dbt.type_string() ~ ')',
            "','",
            'memberships_numbered.population_number'
        ) }} as signature
    from memberships_numbered
    group by
        memberships_numbered.conversation_id,
        memberships_numbered.conversation_date
),

-- each conversation with its signature's number (signatures numbered in order)
conversations_signed as (
    select
        conversation_signatures.conversation_id,
        conversation_signatures.conversation_date,
        dense_rank() over (order by conversation_signatures.signature) as signature_number
    from conversation_signatures
),

signature_memberships as (
    select distinct
        conversations_signed.signature_number,
        memberships_numbered.comparison,
        memberships_numbered.segment_type,
        memberships_numbered.segment_value,
        memberships_numbered.is_successful
    from memberships_numbered
    inner join conversations_signed
        on memberships_numbered.conversation_id = conversations_signed.conversation_id
),

-- Per day, signature, step and depth (null past max_depth): the step rows
-- and the conversations whose first occurrence of the step it is.
steps_per_signature as (
    select
        conversations_signed.conversation_date,
        conversations_signed.signature_number,
        steps.step,
        case when steps.step_number <= {{ max_depth }} then steps.step_number end as depth,  -- noqa: RF04
        count(*) as step_rows,
        count(case when steps.is_first_occurrence then 1 end) as first_occurrences
    from steps
    inner join conversations_signed
        on steps.conversation_id = conversations_signed.conversation_id
    where not {{ regex_contains('steps.step', string_literal(excluded_step_pattern)) }}
    group by
        conversations_signed.conversation_date,
        conversations_signed.signature_number,
        steps.step,
        case when steps.step_number <= {{ max_depth }} then steps.step_number end
),

-- Conversations with the step anywhere in the path (depth null), and at
-- each depth (a conversation has one step per depth).
step_presence as (
    select
        steps_per_signature.conversation_date,
        steps_per_signature.signature_number,
        'anywhere' as scope,
        cast(null as {{ dbt.type_int() }}) as depth,  -- noqa: RF04
        steps_per_signature.step,
        sum(steps_per_signature.first_occurrences) as conversations
    from steps_per_signature
    group by
        steps_per_signature.conversation_date,
        steps_per_signature.signature_number,
        steps_per_signature.step

    union all

    select
        steps_per_signature.conversation_date,
        steps_per_signature.signature_number,
        'at_depth' as scope,
        steps_per_signature.depth,
        steps_per_signature.step,
        steps_per_signature.step_rows as conversations
    from steps_per_signature
    where steps_per_signature.depth is not null
),

step_days_counted as (
    select
        step_presence.conversation_date,
        signature_memberships.comparison,
        signature_memberships.segment_type,
        signature_memberships.segment_value,
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
        step_presence.conversation_date,
        signature_memberships.comparison,
        signature_memberships.segment_type,
        signature_memberships.segment_value,
        step_presence.scope,
        step_presence.depth,
        step_presence.step
),

final as (
    select
        step_days_counted.conversation_date,
        step_days_counted.comparison,
        step_days_counted.segment_type,
        step_days_counted.segment_value,
        step_days_counted.scope,
        cast(step_days_counted.depth as {{ dbt.type_int() }}) as depth,  -- noqa: RF04
        step_days_counted.step,
        cast(step_days_counted.successful_with_step as {{ dbt.type_bigint() }}) as successful_with_step,
        cast(step_days_counted.failed_with_step as {{ dbt.type_bigint() }}) as failed_with_step
    from step_days_counted
)

select * from final
