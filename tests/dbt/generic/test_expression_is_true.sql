{#- Fails for rows where the boolean SQL expression is false, e.g.
    `resolution_rate <= completion_rate`. Optional `scope`, a condition,
    narrows the rows (e.g. to what the run wrote: written_days(),
    written_rows(), rendered when the test is compiled). -#}
{% test expression_is_true(model, expression, scope=none) %}

select *
from {{ model }}
where not ({{ expression }})
{%- if scope %}
    and ({{ scope }})
{%- endif %}

{% endtest %}
