{#- The staging models of the classifier step's output tables
    (stg_stage_classifications, stg_message_sentiment) keep the newest row of
    each key. The classifier writes a key's rows again (delete, then insert
    with a new write time) and never removes a key without writing it, so
    such a model is incremental by key: a run recomputes, from every source
    row of them, the keys with a row written after the newest one the model
    holds; the rest are unchanged. -#}

{#- A condition on a row of such a model's source `relation`: its `key` has a
    row written (`written_at`, the column of the write time, named the same
    in the model) after the newest write time the model holds; true on a
    full build. A row without a write time counts as new, and so does every
    row when the model is empty. -#}
{% macro has_rows_written_since_previous_build(key, relation, written_at) %}
    {%- if is_incremental() -%}
        {{ key }} in (
            select written.{{ key }}
            from {{ relation }} as written
            where coalesce(
                written.{{ written_at }} > (select max(built.{{ written_at }}) from {{ this }} as built),
                true
            )
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
