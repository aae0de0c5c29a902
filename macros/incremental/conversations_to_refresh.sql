{#- For an incremental model whose rows follow conversations: the CTE
    `conversations_to_refresh` (conversation_id), every conversation whose
    facts may differ from what the previous build saw; emits it followed by
    a comma, nothing on a full build (is_incremental() false). The set is
    computed once per build, by the pre-hook
    create_conversations_to_refresh(refresh) (the model's config gives it
    the same `refresh`, these arguments), into a temporary table the body,
    the delete pre-hook and the post-hook that records the set all read:
    DuckDB then knows the set is small and probes it with the history,
    instead of building a hash table of the whole history (4-30x faster per
    model at 10M events), and the set is not computed three times. Commands
    that run no hooks (dbt show, dbt compile) compute the set in the CTE. -#}
{% macro conversations_to_refresh_cte(
    clock_moves_rows=false,
    previous_rows=none,
    conversion_window_moves_rows=false,
    newly_classified=false
) %}
    {%- set refresh = {
        'clock_moves_rows': clock_moves_rows,
        'previous_rows': previous_rows,
        'conversion_window_moves_rows': conversion_window_moves_rows,
        'newly_classified': newly_classified,
    } %}
    {%- if not execute %}
        {#- parse time: take the refs the set reads, so dbt knows the
            dependencies (rendering the query takes them) -#}
        {%- set parsed = conversations_to_refresh_query(refresh) %}
    {%- elif is_incremental() and flags.WHICH in ('run', 'build', 'retry') %}
conversations_to_refresh as (
    select to_refresh.conversation_id
    from {{ conversations_to_refresh_relation() }} as to_refresh
),
    {%- elif is_incremental() %}
{#- dbt show / compile run no pre-hook: the set is computed here -#}
conversations_to_refresh as (
    {{ conversations_to_refresh_query(refresh) }}
),
    {%- endif %}
{%- endmacro %}

{#- The temporary table of the current model's conversations to refresh. -#}
{% macro conversations_to_refresh_relation() %}
    {{ return(api.Relation.create(identifier=this.identifier ~ '__conversations_to_refresh')) }}
{% endmacro %}

{#- Pre-hook, after forget_stale_incremental_build() (so a stale history
    refreshes every conversation): on an incremental run, the temporary
    table conversations_to_refresh_relation() with the set
    conversations_to_refresh_query(refresh) selects; drop_conversations_to_refresh()
    removes it after the build. -#}
{% macro create_conversations_to_refresh(refresh={}) %}
    {%- if is_incremental() -%}
    {{ return(adapter.dispatch('create_conversations_to_refresh', 'convo_warehouse')(refresh)) }}
    {%- else -%}
    select 1
    {%- endif -%}
{% endmacro %}

{% macro default__create_conversations_to_refresh(refresh) %}
    create or replace temporary view {{ conversations_to_refresh_relation() }} as
    {{ conversations_to_refresh_query(refresh) }}
{% endmacro %}

{% macro duckdb__create_conversations_to_refresh(refresh) %}
    create or replace temporary table {{ conversations_to_refresh_relation() }} as
    {{ conversations_to_refresh_query(refresh) }}
{% endmacro %}

{#- Last post-hook: the temporary table goes. -#}
{% macro drop_conversations_to_refresh() %}
    {%- if is_incremental() -%}
    {{ return(adapter.dispatch('drop_conversations_to_refresh', 'convo_warehouse')()) }}
    {%- else -%}
    select 1
    {%- endif -%}
{% endmacro %}

{% macro default__drop_conversations_to_refresh() %}
    drop view if exists {{ conversations_to_refresh_relation() }}
{% endmacro %}

{% macro duckdb__drop_conversations_to_refresh() %}
    drop table if exists {{ conversations_to_refresh_relation() }}
{% endmacro %}

{#- How the set of conversations to refresh is computed: the CTE
    `conversations_to_refresh` (conversation_id), every conversation whose
    facts may differ from what the previous build saw, for
    conversations_to_refresh_query() and days_to_refresh_cte(). Needs
    previous_build_cte() before it; emits its CTEs followed by a comma. A
    conversation is refreshed when
      1. it has an event loaded after the previous build (every conversation
         when there is no usable watermark: first build, or a stale history);
      2. with `clock_moves_rows` (rows that depend on inferred abandonment):
         the warehouse clock moved it across the abandonment window. Inferred
         abandonment compares a conversation's last event with the newest
         staged event anywhere (the clock), so it changes exactly for the
         conversations whose last event is at least `abandon_after_minutes`
         before the new clock but was not before the previous build's clock;
         a clock that did not move changes nothing;
      3. with `conversion_window_moves_rows` (rows that say whether a funnel's
         conversion window is open): the clock moved it past the end of its
         window, `funnel_conversion_window_hours` after its first event;
      4. with `newly_classified` (rows fed by the classifier step): the
         classifier step wrote something of it after what the previous build
         had seen (the watermark's classified_through): a stage
         classification (classified_at),
         a user message's sentiment (scored_at) or a quality judgment
         (judged_at). It classifies changed transcripts, and again every
         conversation when its rules, lexicon or model change.
    `previous_rows` (default {{ this }}): a relation, or a model's name, with
    conversation_id, last_event_at and first_event_at of every conversation
    built before; a model that is not one row per conversation (the metrics,
    the funnel chain) passes int_conversations_summarized, whose times are
    unchanged for every conversation not in 1.
    Emits nothing on a full build (is_incremental() false). -#}
{% macro conversations_to_refresh_computed_cte(
    clock_moves_rows=false,
    previous_rows=none,
    conversion_window_moves_rows=false,
    newly_classified=false
) %}
    {#- the refs are taken when dbt parses the model too (is_incremental() is
        false then), so it knows the dependencies; not in a unit test, which
        gives only the model's own inputs -#}
    {%- if is_incremental() or not execute %}
    {%- set events = ref('stg_events') %}
    {%- set classifier_outputs = [
        (ref('stg_stage_classifications'), 'classified_at'),
        (ref('stg_message_sentiment'), 'scored_at'),
        (ref('stg_conversation_judgments'), 'judged_at'),
    ] if newly_classified else [] %}
    {%- set previous_rows = this if previous_rows is none
        else (ref(previous_rows) if previous_rows is string else previous_rows) %}
    {%- endif %}
    {%- if is_incremental() %}
    {%- set clock_windows = [] %}
    {%- if clock_moves_rows %}
        {%- do clock_windows.append({
            'name': 'abandonment', 'column': 'last_event_at', 'minutes': var('abandon_after_minutes')
        }) %}
    {%- endif %}
    {%- if conversion_window_moves_rows %}
        {%- do clock_windows.append({
            'name': 'conversion_window', 'column': 'first_event_at',
            'minutes': 60 * var('funnel_conversion_window_hours', 24)
        }) %}
    {%- endif %}
conversations_with_new_events as (
    select distinct stg_events.conversation_id
    from {{ events }} as stg_events
    cross join previous_build
    where
        previous_build.loaded_through_load_id is null
        or stg_events.load_id > previous_build.loaded_through_load_id
),

    {%- if clock_windows %}

warehouse_clock_now as (
    select max(stg_events.event_at) as newest_event_at
    from {{ events }} as stg_events
),
    {%- endif %}
    {%- for window in clock_windows %}

{#- both ends inclusive: a conversation on the boundary is refreshed rather
    than risked -#}
conversations_crossing_{{ window.name }} as (
    select previous_rows.conversation_id
    from {{ previous_rows }} as previous_rows
    cross join previous_build
    cross join warehouse_clock_now
    where
        previous_rows.{{ window.column }} >= {{ dbt.dateadd(
            'minute', -1 * window.minutes, 'previous_build.newest_event_at'
        ) }}
        and previous_rows.{{ window.column }} <= {{ dbt.dateadd(
            'minute', -1 * window.minutes, 'warehouse_clock_now.newest_event_at'
        ) }}
),
    {%- endfor %}
    {%- if newly_classified %}

conversations_newly_classified as (
    {%- for relation, written_at in classifier_outputs %}
    select classifier_output.conversation_id
    from {{ relation }} as classifier_output
    cross join previous_build
    where
        previous_build.classified_through is null
        or classifier_output.{{ written_at }} > previous_build.classified_through
    {%- if not loop.last %}
    union
    {%- endif %}
    {%- endfor %}
),
    {%- endif %}

conversations_to_refresh as (
    select conversations_with_new_events.conversation_id
    from conversations_with_new_events
    {%- for window in clock_windows %}
    union
    select conversations_crossing_{{ window.name }}.conversation_id
    from conversations_crossing_{{ window.name }}
    {%- endfor %}
    {%- if newly_classified %}
    union
    select conversations_newly_classified.conversation_id
    from conversations_newly_classified
    {%- endif %}
),
    {%- endif %}
{%- endmacro %}

{#- A condition for a model using conversations_to_refresh_cte(): `column` is
    a conversation to refresh on an incremental run; true on a full build. -#}
{% macro is_conversation_to_refresh(column) %}
    {%- if is_incremental() -%}
        {{ column }} in (select conversations_to_refresh.conversation_id from conversations_to_refresh)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of a model whose rows are replaced conversation by conversation
    (conversation_replaced_config), after create_conversations_to_refresh():
    on an incremental run, delete every row of the conversations this run
    recomputes, the set its body selects. A keyed merge alone would keep the
    rows a conversation no longer has (a marker a `never:` rule now rules
    out, a stage the classifier took back). -#}
{% macro delete_conversations_to_refresh() %}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where conversation_id in (
        select to_refresh.conversation_id
        from {{ conversations_to_refresh_relation() }} as to_refresh
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- The set of conversations to refresh for `refresh` (the arguments of
    conversations_to_refresh_cte()), as a query (one column, conversation_id)
    with its own previous_build: what create_conversations_to_refresh()
    stores, read before the watermark moves. -#}
{% macro conversations_to_refresh_query(refresh={}) %}
    with
    {{ previous_build_cte() }}
    {{ conversations_to_refresh_computed_cte(**refresh) }}
    refreshed as (
        select conversations_to_refresh.conversation_id
        from conversations_to_refresh
    )
    select refreshed.conversation_id from refreshed
{%- endmacro %}
