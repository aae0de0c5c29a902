{#- The model's not_null and check constraints its engine does not enforce (all
    on Spark's Parquet tables), as conditions every row must meet (a check fails
    only when false); rows_to_insert_counts and check_full_build count them. -#}
{% macro unenforced_constraints() -%}
    {%- set conditions = [] -%}
    {%- if execute and not (model.contract.enforced and adapter.dispatch('engine_enforces_constraints', 'convo_warehouse')()) -%}
        {%- for column in [none] + (model.columns.values() | list) -%}  {#- none: the model's own -#}
            {%- for constraint in (model.get('constraints', []) if column is none else column.get('constraints', []))
                if constraint.type in ('not_null', 'check') -%}
                {%- do conditions.append(column.name ~ ' is not null' if constraint.type == 'not_null'
                    else 'coalesce(' ~ constraint.expression ~ ', true)') -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(conditions) }}
{%- endmacro %}

{% macro rows_breaking(relation, conditions) %}(select count(*) from {{ relation }} where not ({{ conditions | join(' and ') }})){% endmacro %}

{% macro raise_broken_constraint(relation, conditions) -%}
    {%- for condition in conditions if run_query('select ' ~ rows_breaking(relation, [condition])).rows[0][0] > 0 -%}
        {{ exceptions.raise_compiler_error(this.identifier ~ ': rows to write break its contract\'s constraint `' ~ condition
            ~ '` (not enforced by ' ~ target.type ~ ', so checked here); the build fails. Fix the rows\' source.') }}
    {%- endfor -%}
{%- endmacro %}

{% macro default__engine_enforces_constraints() %}{{ return(true) }}{% endmacro %}

{#- dbt-spark applies not_null and check constraints to Delta tables only -#}
{% macro spark__engine_enforces_constraints() %}{{ return(false) }}{% endmacro %}
