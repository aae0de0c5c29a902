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
