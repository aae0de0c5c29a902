{% macro get_incremental_replace_scope_sql(arg_dict) %}
    {%- set target_relation = arg_dict['target_relation'] -%}
    {%- set new_rows = arg_dict['temp_relation'] -%}
    {%- set scope_key = config.get('scope_key', 'conversation_id') -%}
    {%- set scope = ref(config.get('scope_model', 'scope_conversations')) -%}
    {%- set scope_column = config.get('scope_column', scope_key) -%}
    {%- set in_scope = scope_key ~ ' in (select scope.' ~ scope_column ~ ' from ' ~ scope ~ ' as scope)' -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    {%- set counts = run_query('select ' ~ rows_to_insert_counts(new_rows, target_relation, in_scope)).rows[0] -%}
    {%- do raise_rows_to_insert(counts, new_rows, in_scope) -%}
    delete from {{ target_relation }}
    where {{ in_scope }};
    insert into {{ target_relation }} ({{ columns }})
    select {{ columns }}
    from {{ new_rows }}
{% endmacro %}

{% macro rows_to_insert_counts(new_rows, target_relation, in_scope) -%}
    {%- set grain = unique_key_columns() -%}
    {%- set scope_key = config.get('scope_key', 'conversation_id') -%}
    {%- set conditions = unenforced_constraints() -%}
    (select count(*) from {{ new_rows }} as new_rows where not coalesce(new_rows.{{ in_scope }}, false)) as outside_scope,
    {{ repeated_grain_count(new_rows, grain) }} as repeated_grain,
    {% if scope_key not in grain -%}
    {#- new rows on the right, hashed (profiles.yml keeps the sides) -#}
    (select count(*) from {{ target_relation }} as kept inner join {{ new_rows }} as new_rows
        on {{ grain_join(grain, 'new_rows', 'kept') }} where not coalesce(kept.{{ in_scope }}, false))
    {%- else %}0{% endif %} as repeated_kept_key,
    {{ rows_breaking(new_rows, conditions) if conditions else '0' }} as breaking_constraints
{%- endmacro %}

{% macro raise_rows_to_insert(counts, new_rows, in_scope) -%}
    {%- set scope_key = config.get('scope_key', 'conversation_id') -%}
    {%- if counts[0] > 0 -%}
        {%- set example = run_query(
            'select ' ~ scope_key ~ ' from ' ~ new_rows ~ ' as new_rows where not coalesce(new_rows.' ~ in_scope
            ~ ', false) limit 1'
        ).rows[0][0] -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ ': the body returned ' ~ counts[0] ~ ' rows outside this run\'s scope (e.g. '
            ~ scope_key ~ ' = ' ~ example ~ ', not in ' ~ config.get('scope_model', 'scope_conversations')
            ~ '); the build is rolled back. Narrow the body\'s input to the scope in its is_incremental() filter.'
        ) }}
    {%- endif -%}
    {%- do raise_repeated_grain(new_rows, unique_key_columns()) if counts[1] > 0 or counts[2] > 0 -%}
    {%- do raise_broken_constraint(new_rows, unenforced_constraints()) if counts[3] > 0 -%}
{%- endmacro %}

{% macro unique_key_columns() -%}
    {%- set unique_key = config.require('unique_key') -%}
    {{ return([unique_key] if unique_key is string else unique_key) }}
{%- endmacro %}

{% macro repeated_grain_count(relation, grain) -%}
    {#- a scalar subquery: how many keys of the grain repeat in relation -#}
    (select count(*) from (select 1 as repeated from {{ relation }} group by {{ grain | join(', ') }}
    having count(*) > 1) as repeated_keys)
{%- endmacro %}

{% macro grain_join(grain, left, right) -%}
    {%- for column in grain -%}
        {{ left }}.{{ column }} = {{ right }}.{{ column }}{{ ' and ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{% macro raise_repeated_grain(relation, grain) -%}
    {%- set repeated = run_query(
        'select ' ~ grain | join(', ') ~ ', count(*) from ' ~ relation ~ ' group by ' ~ grain | join(', ')
        ~ ' having count(*) > 1 limit 1'
    ).rows -%}
    {%- set example = [] -%}
    {%- for column in grain if repeated -%}
        {%- do example.append(column ~ ' = ' ~ repeated[0][loop.index0]) -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error(
        this.identifier ~ ': the rows to write repeat the grain (' ~ grain | join(', ') ~ ')'
        ~ (', e.g. ' ~ example | join(', ') if example else ', or repeat a key the table keeps outside this run\'s scope')
        ~ '; the build is rolled back. Find the join or union that duplicates them.'
    ) }}
{%- endmacro %}

{% macro check_full_build() -%}
    {%- set incremental = config.get('materialized') == 'incremental'
        and config.get('incremental_strategy') in ('replace_scope', 'insert_overwrite') -%}
    {%- if execute and not is_incremental() and (incremental or config.get('materialized') == 'table') -%}
        {%- set grain = unique_key_columns() if incremental and config.get('unique_key') else none -%}
        {%- set conditions = unenforced_constraints() -%}
        {%- set counts = run_query(
            'select ' ~ (repeated_grain_count(this, grain) if grain else '0')
            ~ ', ' ~ (rows_breaking(this, conditions) if conditions else '0')
        ).rows[0] if grain or conditions else [0, 0] -%}
        {%- do raise_repeated_grain(this, grain) if counts[0] > 0 -%}
        {%- do raise_broken_constraint(this, conditions) if counts[1] > 0 -%}
    {%- endif -%}
{%- endmacro %}
