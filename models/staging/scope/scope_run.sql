{#- One row: where the history stands for this run and where it stood for
    the last complete run (the newest row of audit.scope_runs; null in a
    warehouse no run has covered yet and in a --full-refresh). The clock
    (the newest staged event) is computed here once; every model that
    compares with it reads it here. -#}
{%- set classifier_runs = load_relation(ref('classifier_runs')) %}

with

covered as (
    select
        scope_runs.through_load_id,
        scope_runs.clock,
        scope_runs.classified_through
    from {{ source('ledger', 'scope_runs') }} as scope_runs
    where
        scope_runs.recorded_at = (
            select max(newest.recorded_at) from {{ source('ledger', 'scope_runs') }} as newest
        )
    -- a --full-refresh covers the whole history, as a first run does: its
    -- data tests and the GX suites read every row
    {%- if flags.FULL_REFRESH %}
        and false
    {%- endif %}
),

load_runs as (
    select max(load_id) as through_load_id
    from {{ ref('scope_load_runs') }}
),

clock as (
    select max(last_staged_at) as clock
    from {{ ref('scope_conversation_lifecycle') }}
),

-- the newest write time of each classifier output (the classifier step of
-- this run, when it is part of it, has written them by now)
classifier_outputs as (
    select max(classified_at) as written_at
    from {{ source('classification', 'stage_classifications') }}
    union all
    select max(scored_at) as written_at
    from {{ source('classification', 'message_sentiment') }}
    union all
    select max(embedded_at) as written_at
    from {{ source('classification', 'message_embeddings') }}
    union all
    select max(judged_at) as written_at
    from {{ source('classification', 'conversation_judgments') }}
),

classified as (
    select
        max(classifier_outputs.written_at) as classified_through,
        {%- if classifier_runs is not none %}
            (select max(classifier_runs.run_started_at) from {{ classifier_runs }} as classifier_runs)
        {%- else %}
            cast(null as {{ dbt.type_timestamp() }})
        {%- endif %} as classifier_run_at
    from classifier_outputs
),

positions as (
    select
        (select covered.through_load_id from covered) as previous_load_id,
        coalesce(load_runs.through_load_id, (select covered.through_load_id from covered)) as through_load_id,
        (select covered.clock from covered) as previous_clock,
        clock.clock,
        (select covered.classified_through from covered) as previous_classified_through,
        classified.classified_through,
        classified.classifier_run_at
    from load_runs
    cross join clock
    cross join classified
)

select * from positions
