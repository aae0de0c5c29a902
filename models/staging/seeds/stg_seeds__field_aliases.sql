{#- The field_aliases seed (contract v1.1 field names -> canonical fields),
    names trimmed; a field name matches exactly (JSON keys and CSV headers
    are case-sensitive). -#}
with

aliases as (
    {{ seed_with_defaults(
        'field_aliases',
        required_columns={
            'alias_field': dbt.type_string(),
            'canonical_field': dbt.type_string(),
        },
        optional_columns={},
    ) | indent(4) }}
),

final as (
    select
        trim(aliases.alias_field) as alias_field,
        trim(aliases.canonical_field) as canonical_field
    from aliases
)

select * from final
