{#- Fails for rows where the boolean SQL expression is false, e.g.
    `resolution_rate <= completion_rate`. Optional `scope`, a condition,
    narrows the rows (e.g. to what the run recomputed: the conversations,
    days or load runs of a scope model). -#}
{% test expression_is_true(model, expression, scope=none) %}

select *
from {{ model }}
where not ({{ expression }})
{%- if scope %}
    and ({{ scope }})
{%- endif %}

{% endtest %}
