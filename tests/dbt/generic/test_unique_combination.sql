{#- Fails for every combination of the columns that appears more than once.
    Optional `scope`, a condition, narrows the rows (e.g. to what the run
    recomputed: the days of scope_days; a `where` config is rendered when
    the project is parsed, before ref() can name a scope model). -#}
{% test unique_combination(model, columns, scope=none) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
{%- if scope %}
where {{ scope }}
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
