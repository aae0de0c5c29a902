{#- dbt's relationships test on the rows the model's newest build wrote
    (written_rows_of()): each non-null value of the column among them is a
    value of `field` in `to`. A full build wrote every row, so it checks
    them all; an hour run checks the conversations (days, loads) it
    replaced, not the history it left as it was. The written rows are
    narrowed first, so the join reads only them. -#}
{% test relationships_of_written_rows(model, column_name, to, field) %}

with

written as (
    select child.{{ column_name }}
    from {{ model }} as child
    where
        child.{{ column_name }} is not null
        and {{ written_rows_of(model, 'child') }}
)

select written.{{ column_name }}
from written
left join {{ to }} as parent
    on written.{{ column_name }} = parent.{{ field }}
where parent.{{ field }} is null

{% endtest %}
