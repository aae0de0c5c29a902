{#- Fails for every row whose metric name is not one of metrics_definitions(),
    the list dim_metrics is generated from: the relationship to dim_metrics,
    checked without reading it, so the test runs in the same dbt step as the
    model under test (dim_metrics is built before the classifier, the metrics
    after it). -#}
{% test is_defined_metric(model, column_name) %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} not in (
    {%- for metric in metrics_definitions() -%}
        '{{ metric.name }}'{{ ", " if not loop.last }}
    {%- endfor -%}
)

{% endtest %}
