{#- Fails for rows where the boolean SQL expression is false, e.g.
    `resolution_rate <= completion_rate`. Optional `where` narrows the rows. -#}
{% test expression_is_true(model, expression, where=none) %}

select *
from {{ model }}
where not ({{ expression }})
{%- if where %}
    and ({{ where }})
{%- endif %}

{% endtest %}
