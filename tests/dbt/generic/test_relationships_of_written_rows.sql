{#- dbt's relationships test on the rows the model's newest build wrote
    (written_rows_of()): each non-null value of the column among them is a
    value of `field` in `to`. A full build wrote every row, so it checks
    them all; an hour run checks the conversations (days, loads) it
    replaced, not the history it left as it was. -#}
{% test relationships_of_written_rows(model, column_name, to, field) %}

select child.{{ column_name }}
from {{ model }} as child
left join {{ to }} as parent
    on child.{{ column_name }} = parent.{{ field }}
where
    child.{{ column_name }} is not null
    and parent.{{ field }} is null
    and {{ written_rows_of(model, 'child') }}

{% endtest %}
