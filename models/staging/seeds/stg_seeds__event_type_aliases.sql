{#- The event_type_aliases seed with every column, aliases lower-cased and
    trimmed (matching ignores case and surrounding spaces): required alias,
    event_type; optional funnel and stage, the funnel stage an alias of
    stage_reached asserts (meeting_booked -> sales / booked). -#}
with

aliases as (
    {{ seed_with_defaults(
        'event_type_aliases',
        required_columns={
            'alias': dbt.type_string(),
            'event_type': dbt.type_string(),
        },
        optional_columns={
            'funnel': [dbt.type_string(), 'null'],
            'stage': [dbt.type_string(), 'null'],
        },
    ) | indent(4) }}
),

final as (
    select
        lower(trim(aliases.alias)) as alias,  -- noqa: RF04
        aliases.event_type,
        aliases.funnel,
        aliases.stage
    from aliases
)

select * from final
