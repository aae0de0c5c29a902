{#- Which keys a replace_touched build replaces, and how its body is
    narrowed to them (docs/incremental.md). -#}

{#- In a model body: a condition narrowing the rows read to the keys this
    build replaces. `kind`: conversation (column holds a conversation_id),
    day (a date) or load (a load_id). It renders as a mark that is true;
    an incremental build of a replace_touched model of the same kind fills
    it in (touched_filled()), a full build, another materialization, dbt
    show and dbt compile leave it true. An ephemeral model may hold marks:
    the model that inlines it fills them. `days_before` (day kind): the
    rows whose day is that many days before a touched day instead, for a
    model that compares a day with an earlier one (compared_days_back). -#}
{% macro touched(column, kind='conversation', days_before=0) -%}
    {%- set expression = column if not days_before
        else dbt.dateadd('day', days_before, column) | replace('\n', ' ') | trim -%}
    (/* touched {{ kind }}: {{ expression }} */ 1 = 1)
{%- endmacro %}

{#- In the body of a model keyed by load_id: the rows this model already
    holds for the load runs before the ones the build replaces, as a
    subquery of `columns` where `condition` holds (what a load's rows depend
    on in earlier loads: the first delivery of an event_id). It renders as
    no rows, typed like `like` (a CTE of the body with those columns): a
    full build, Spark, dbt show and dbt compile parse every load in the body
    itself. An incremental replace_touched build fills it in with its own
    table, read after the touched loads' rows were deleted, so exactly the
    earlier loads'. -#}
{% macro earlier_loads(columns, like, condition) -%}
    (/* earlier loads where {{ condition }} */ select {{ columns | join(', ') }} from {{ like }} where 1 = 0)
{%- endmacro %}

{#- conversation, load or day: the kind of a touched_key. -#}
{% macro touched_key_kind(key) -%}
    {{ return('conversation' if key == 'conversation_id' else ('load' if key == 'load_id' else 'day')) }}
{%- endmacro %}

{#- The compiled `sql` with its touched() marks of `kind` filled in:
    `touched` none (a full build) leaves them true; else
    {'keys': literals or none, 'relation': the touched keys' table}. -#}
{% macro touched_filled(sql, kind, touched) -%}
    {%- if touched is none -%}
        {{ return(sql) }}
    {%- endif -%}
    {%- set pattern = modules.re.compile('\\(/\\* touched ' ~ kind ~ ': (.+?) \\*/ 1 = 1\\)') -%}
    {%- set filled = namespace(sql=sql) -%}
    {%- for column in pattern.findall(sql) | unique -%}
        {%- set mark = '(/* touched ' ~ kind ~ ': ' ~ column ~ ' */ 1 = 1)' -%}
        {%- set condition = '(' ~ touched_condition(column, kind, touched['keys'], touched['relation']) ~ ')' -%}
        {%- set filled.sql = filled.sql | replace(mark, condition) -%}
    {%- endfor -%}
    {%- if kind == 'load' -%}
        {%- set earlier = modules.re.compile(
            '\\(/\\* earlier loads where (.+?) \\*/ select (.+?) from [^ ]+ where 1 = 0\\)'
        ) -%}
        {%- set filled.sql = earlier.sub('(select \\2 from ' ~ this ~ ' where \\1)', filled.sql) -%}
    {%- endif -%}
    {{ return(filled.sql) }}
{%- endmacro %}

{#- A condition: `column` is one of the touched keys. Days and loads are
    written as literals (DuckDB pushes a literal list down through views and
    joins, an `in (subquery)` it applies after them); conversations are
    read from the touched keys' table (thousands of ids). -#}
{% macro touched_condition(column, kind, keys, relation) -%}
    {%- if kind == 'conversation' -%}
        {{ column }} in (select touched_keys.touched_key from {{ relation }} as touched_keys)
    {%- elif keys | length == 0 -%}
        1 = 0
    {%- elif kind == 'day' -%}
        {{ column }} in (
            {%- for day in keys -%}
                cast('{{ day }}' as {{ type_date() }}){{ ', ' if not loop.last }}
            {%- endfor -%}
        )
    {%- else -%}
        {{ column }} in ({{ keys | join(', ') }})
    {%- endif -%}
{%- endmacro %}

{#- The temporary table of a build's touched keys (one column, touched_key). -#}
{% macro touched_keys_relation() -%}
    {{ return(api.Relation.create(identifier=this.identifier ~ '__touched_keys', type='table')) }}
{%- endmacro %}

{#- Days and loads as a sorted list of literals; none for conversations. -#}
{% macro touched_key_literals(relation, kind) -%}
    {%- if kind == 'conversation' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set values = run_query(
        'select touched_keys.touched_key from ' ~ relation ~ ' as touched_keys order by 1'
    ).columns[0].values() -%}
    {{ return(values | list) }}
{%- endmacro %}

{#- Statements filling `relation` with the keys this build replaces:
      load          the load runs after the previous build's newest;
      conversation  touched_conversations_query();
      day           every event date of those conversations (their day
                    before a late event moved it, too) and their day now;
                    and, for each of `days_back` (compared_days_back), the
                    day that many days after each, whose comparison with
                    it changes. -#}
{% macro create_touched_keys(relation, kind, key, touched_by, previous, position, days_back=[]) -%}
    {%- set events = graph_relation('model.convo_warehouse.base_events_parsed') -%}
    {%- if kind == 'load' -%}
        create temporary table {{ relation }} as
        select distinct raw_events.load_id as touched_key
        from {{ graph_relation('source.convo_warehouse.raw.events') }} as raw_events
        where raw_events.load_id > {{ previous.loaded_through_load_id or -1 }}
    {%- elif kind == 'conversation' -%}
        create temporary table {{ relation }} as
        {{ touched_conversations_query(touched_by, previous, position) }}
    {%- else -%}
        {%- set conversations = graph_relation('model.convo_warehouse.int_conversations_summarized') -%}
        {%- set touched_conversations = api.Relation.create(
            identifier=relation.identifier ~ '__conversations', type='table'
        ) -%}
        create temporary table {{ touched_conversations }} as
        {{ touched_conversations_query(touched_by, previous, position) }};
        create temporary table {{ relation }} as
        with days_touched as (
            select cast(staged.event_at as {{ type_date() }}) as touched_key
            from {{ events }} as staged
            inner join {{ touched_conversations }} as touched_conversations
                on staged.conversation_id = touched_conversations.touched_key
            where staged.is_first_delivery
            union
            select summarized.conversation_date as touched_key
            from {{ conversations }} as summarized
            inner join {{ touched_conversations }} as touched_conversations
                on summarized.conversation_id = touched_conversations.touched_key
        )
        select days_touched.touched_key
        from days_touched
        {%- for days in days_back %}
        union
        select cast({{ dbt.dateadd('day', days, 'days_touched.touched_key') }} as {{ type_date() }}) as touched_key
        from days_touched
        {%- endfor %};
        drop table {{ touched_conversations }}
    {%- endif -%}
{%- endmacro %}

{#- The conversations whose rows may differ from what the previous build
    wrote (one column, touched_key):
      new events         a staged event of a load after the previous build's
                         newest (late events are no special case: they come
                         in a newer load);
      abandonment_clock  inferred abandonment compares a conversation's last
                         event with the newest staged event anywhere (the
                         clock); it changes exactly for the conversations
                         whose last event is at least abandon_after_minutes
                         before the clock now but was not before the
                         previous build's clock;
      conversion_window  the same for the end of a funnel's conversion
                         window (funnel_conversion_window_hours after the
                         first event);
      classifier_output  the classifier wrote a stage, a sentiment or a
                         judgment of it after what the previous build saw.
    Both ends of a clock window are inclusive: a conversation on the
    boundary is recomputed rather than risked. -#}
{% macro touched_conversations_query(touched_by, previous, position) -%}
    {#- the staged events: stg_events is a view of these rows -#}
    {%- set events = graph_relation('model.convo_warehouse.base_events_parsed') -%}
    {%- set conversations = this if this.identifier == 'int_conversations_summarized'
        else graph_relation('model.convo_warehouse.int_conversations_summarized') -%}
    {%- set windows = [] -%}
    {%- if 'abandonment_clock' in touched_by -%}
        {%- do windows.append(('last_event_at', var('abandon_after_minutes'))) -%}
    {%- endif -%}
    {%- if 'conversion_window' in touched_by -%}
        {%- do windows.append(('first_event_at', 60 * var('funnel_conversion_window_hours'))) -%}
    {%- endif -%}
    select distinct staged.conversation_id as touched_key
    from {{ events }} as staged
    where
        staged.is_first_delivery
        and staged.load_id > {{ previous.loaded_through_load_id or -1 }}
    {%- for column, minutes in windows %}
        {%- if previous.newest_event_at is not none and position.newest_event_at is not none %}
    union
    select clocked.conversation_id as touched_key
    from {{ conversations }} as clocked
    where
        clocked.{{ column }} >= {{ dbt.dateadd('minute', -1 * minutes, timestamp_literal(previous.newest_event_at)) }}
        and clocked.{{ column }} <= {{ dbt.dateadd('minute', -1 * minutes, timestamp_literal(position.newest_event_at)) }}
        {%- endif %}
    {%- endfor %}
    {%- if 'classifier_output' in touched_by %}
        {%- for name, written_at in classifier_outputs_read() %}
    union
    select classified.conversation_id as touched_key
    from {{ graph_relation('model.convo_warehouse.' ~ name) }} as classified
            {%- if previous.classified_through is not none %}
    where classified.{{ written_at }} > {{ timestamp_literal(previous.classified_through) }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
{%- endmacro %}

{#- The staging models of what the classifier step writes, with the column
    holding when each row was written. -#}
{% macro classifier_outputs() -%}
    {{ return([
        ('stg_stage_classifications', 'classified_at'),
        ('stg_message_sentiment', 'scored_at'),
        ('stg_conversation_judgments', 'judged_at'),
    ]) }}
{%- endmacro %}

{#- A timestamp value read from the warehouse, as a SQL literal. -#}
{% macro timestamp_literal(value) -%}
    cast('{{ value }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The relation of a node of the manifest (a model, seed or source), by
    unique id: what a materialization reads without a ref() (the model
    reads it through its upstream models; check_upstream() makes sure). -#}
{% macro graph_relation(unique_id) -%}
    {%- set node = graph.sources[unique_id] if unique_id.startswith('source.') else graph.nodes[unique_id] -%}
    {{ return(api.Relation.create(
        database=node.database,
        schema=node.schema,
        identifier=node.get('identifier') or node.alias or node.name,
    )) }}
{%- endmacro %}

{#- Every node upstream of `node` (a manifest node; default the current
    model), as unique ids. -#}
{% macro upstream_nodes(node=none) -%}
    {%- set pending = (node or model).depends_on.nodes | list -%}
    {%- set seen = [] -%}
    {#- a breadth-first walk: the loop also visits what it appends -#}
    {%- for unique_id in pending if unique_id not in seen -%}
        {%- do seen.append(unique_id) -%}
        {%- set node = graph.nodes.get(unique_id) -%}
        {%- if node is not none -%}
            {%- do pending.extend(node.depends_on.nodes) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(seen) }}
{%- endmacro %}

{#- The classifier outputs (classifier_outputs()) upstream of `node`
    (default the current model): only what it reads can touch it. -#}
{% macro classifier_outputs_read(node=none) -%}
    {%- set upstream = upstream_nodes(node) -%}
    {%- set read = [] -%}
    {%- for name, written_at in classifier_outputs() -%}
        {%- if 'model.convo_warehouse.' ~ name in upstream -%}
            {%- do read.append((name, written_at)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(read) }}
{%- endmacro %}

{#- A replace_touched model reads the staged events and the conversations'
    facts without a ref() of its own (they are read for the touched keys,
    not by the body), so they must be upstream of it, or it could be built
    before them in a run; touched_by classifier_output needs some classifier
    output upstream. -#}
{% macro check_touched_upstream(kind, touched_by) -%}
    {%- set needed = [] if kind == 'load' else ['model.convo_warehouse.base_events_parsed'] -%}
    {%- if kind == 'day' or 'abandonment_clock' in touched_by or 'conversion_window' in touched_by -%}
        {%- do needed.append('model.convo_warehouse.int_conversations_summarized') -%}
    {%- endif -%}
    {%- set upstream = upstream_nodes() -%}
    {%- for unique_id in needed if unique_id not in upstream and unique_id != model.unique_id -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ ' reads ' ~ unique_id.split('.')[-1] ~ ' to find the keys a run touched: add `-- depends_on: '
            ~ '{{ ref(\'' ~ unique_id.split('.')[-1] ~ '\') }}` to the model so it is built after it.'
        ) }}
    {%- endfor -%}
    {%- if 'classifier_output' in touched_by and not classifier_outputs_read() -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ ' is touched_by classifier_output but reads none of '
            ~ classifier_outputs() | map(attribute=0) | join(', ') ~ ': drop the reason or read the output.'
        ) }}
    {%- endif -%}
{%- endmacro %}
