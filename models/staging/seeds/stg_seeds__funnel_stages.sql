{#- The funnel_stages seed with every column: required funnel_name,
    stage_order, stage, reached_by; optional columns or their defaults
    (docs/staging.md). An empty counting stays null here: the funnel's other
    rows decide its reading (int_funnel_stages_ordered). -#}
{{ seed_with_defaults(
    'funnel_stages',
    required_columns={
        'funnel_name': dbt.type_string(),
        'stage_order': dbt.type_int(),
        'stage': dbt.type_string(),
        'reached_by': dbt.type_string(),
    },
    optional_columns={
        'reached_by_value': [dbt.type_string(), 'null'],
        'description': [dbt.type_string(), 'null'],
        'counting': [dbt.type_string(), 'null'],
    },
) }}
