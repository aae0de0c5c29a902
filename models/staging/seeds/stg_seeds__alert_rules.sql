{#- The alert_rules seed with every column: required rule_name, metric_name,
    condition, threshold, time_window; optional columns or their defaults
    (docs/staging.md). -#}
{{ seed_with_defaults(
    'alert_rules',
    required_columns={
        'rule_name': dbt.type_string(),
        'metric_name': dbt.type_string(),
        'condition': dbt.type_string(),
        'threshold': type_double(),
        'time_window': dbt.type_string(),
    },
    optional_columns={
        'segment_type': [dbt.type_string(), "'all'"],
        'segment_value': [dbt.type_string(), "'all'"],
        'severity': [dbt.type_string(), "'medium'"],
        'min_sample': [dbt.type_bigint(), '1'],
        'description': [dbt.type_string(), 'null'],
    },
) }}
