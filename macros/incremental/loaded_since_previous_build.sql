{#- A `where` for data tests on a model with a load_id column and a
    watermark in audit.incremental_watermarks: the rows of the loads after
    the model's previous build (the one before the newest watermark), so a
    row-by-row test (not_null, accepted_values) reads what the latest build
    added, not the whole history. Every row on a full refresh, on a first
    build, after a stale history was forgotten (the previous watermark is
    then empty), and with the var `test_full_history` (`dbt test --vars
    '{test_full_history: true}'`). Tests across rows (unique) keep reading
    everything. -#}
{% macro loaded_since_previous_build(model_name) %}
    {%- if flags.FULL_REFRESH or var('test_full_history', false) -%}
        1 = 1
    {%- else -%}
        {%- set watermarks = incremental_watermarks_relation() -%}
        load_id > coalesce((
            select previous_watermark.loaded_through_load_id
            from {{ watermarks }} as previous_watermark
            where previous_watermark.model_name = '{{ model_name }}'
            order by previous_watermark.recorded_at desc
            limit 1 offset 1
        ), -1)
    {%- endif -%}
{%- endmacro %}
