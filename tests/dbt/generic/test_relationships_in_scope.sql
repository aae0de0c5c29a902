{#- dbt's relationships test on the rows `scope` selects (a condition on
    the model's columns, e.g. the conversations of scope_conversations):
    each non-null value of the column among them is a value of `field` in
    `to`. A run checks what it recomputed, not the history it left as it
    was. The rows in scope are narrowed first, so the join reads only them. -#}
{% test relationships_in_scope(model, column_name, to, field, scope) %}

with

rows_in_scope as (
    select child.{{ column_name }}
    from {{ model }} as child
    where
        child.{{ column_name }} is not null
        and ({{ scope }})
)

select rows_in_scope.{{ column_name }}
from rows_in_scope
left join {{ to }} as parent
    on rows_in_scope.{{ column_name }} = parent.{{ field }}
where parent.{{ field }} is null

{% endtest %}
