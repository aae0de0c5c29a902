{#- dbt's type_string() renders `varchar` on Spark, which Spark 4 rejects
    without a length; Spark's unbounded text type is `string`. Found before
    dbt's own through the `dispatch` search order in dbt_project.yml. -#}
{% macro spark__type_string() -%}
    string
{%- endmacro %}
