{#- The experiments seed with every column: the contract's five required
    columns, and the optional ones or their defaults (docs/staging.md). -#}
{{ seed_with_defaults(
    'experiments',
    required_columns={
        'test_name': dbt.type_string(),
        'variant': dbt.type_string(),
        'variant_order': dbt.type_int(),
        'is_control': dbt.type_boolean(),
        'weight': type_double(),
    },
    optional_columns={
        'description': [dbt.type_string(), 'null'],
        'start_date': ['date', 'null'],
        'end_date': ['date', 'null'],
        'primary_metric': [dbt.type_string(), "'conversion_rate'"],
    },
) }}
