{#- dbt's relationships test on the rows `scope` selects (a condition on
    the model's columns, e.g. the conversations of scope_conversations):
    each non-null value of the column among them is a value of `field` in
    `to`. A run checks what it recomputed, not the history it left as it
    was. The rows in scope are narrowed first, and the parent to their
    values, so neither side of the join holds the history. -#}
{% test relationships_in_scope(model, column_name, to, field, scope) %}

with

rows_in_scope as (
    select child.{{ column_name }}
    from {{ model }} as child
    where
        child.{{ column_name }} is not null
        and ({{ scope }})
),

parents_in_scope as (
    select parent.{{ field }}
    from {{ to }} as parent
    where parent.{{ field }} in (select rows_in_scope.{{ column_name }} from rows_in_scope)
)

select rows_in_scope.{{ column_name }}
from rows_in_scope
left join parents_in_scope
    on rows_in_scope.{{ column_name }} = parents_in_scope.{{ field }}
where parents_in_scope.{{ field }} is null

{% endtest %}
