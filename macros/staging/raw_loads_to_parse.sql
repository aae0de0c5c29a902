{#- The fingerprint of seeds/field_aliases.csv as base_events_parsed
    stores it (field_aliases_fingerprint), as a query (one row): every
    alias>canonical pair in alias order. -#}
{% macro field_aliases_fingerprint_query() %}
    select
        -- alias_field is unique (a seed test), so this order is total on both engines
        coalesce(
            {{ string_agg_ordered(
                "field_aliases.alias_field || '>' || field_aliases.canonical_field",
                "','",
                "field_aliases.alias_field",
            ) }},
            ''
        ) as field_aliases_fingerprint
    from {{ ref('stg_seeds__field_aliases') }} as field_aliases
{%- endmacro %}

{#- A condition on raw.events' `column` (load_id) for base_events_parsed:
    the load runs after the newest it holds, with that load id written as a
    literal read when the model is compiled, so DuckDB skips the older
    loads' row groups by their min/max (with the bound as a subquery it read
    every raw row, 2 s a run at 10M events); every load run when the field
    aliases changed since its rows were parsed. True on a full build and at
    parse time. -#}
{% macro is_raw_load_to_parse(column) %}
    {%- if not execute or not is_incremental() -%}
        true
    {%- else -%}
        {%- set parsed = run_query(
            "select coalesce(max(load_id), 0), coalesce(max(field_aliases_fingerprint), '') from " ~ this
        ).rows[0] -%}
        {%- set current = run_query(field_aliases_fingerprint_query()).columns[0].values()[0] -%}
        {%- if parsed[1] != current -%}
            true
        {%- else -%}
            {{ column }} > {{ parsed[0] }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
