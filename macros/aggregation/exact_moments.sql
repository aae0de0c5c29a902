{#- Integer limbs, not exact_sum()'s decimals (why: exact_limbs in _aggregation__macros.yml). -#}
{% macro exact_limbs(expression, prefix) -%}
    {%- set two_30 = 'cast(1073741824 as ' ~ type_double() ~ ')' -%}
    {%- set fraction = '(' ~ expression ~ ' - round(' ~ expression ~ ', 0))' -%}
    {%- set scaled = '(' ~ fraction ~ ' * ' ~ two_30 ~ ')' -%}
    cast(round({{ expression }}, 0) as {{ exact_integer_type() }}) as {{ prefix }}_limb_p0,
    cast(round({{ scaled }}, 0) as {{ dbt.type_bigint() }}) as {{ prefix }}_limb_p30,
    cast(round(({{ scaled }} - round({{ scaled }}, 0)) * {{ two_30 }}, 0) as {{ dbt.type_bigint() }})
    as {{ prefix }}_limb_p60
{%- endmacro %}

{% macro exact_moment_parts(relation, prefix) -%}
    {%- set limb = relation ~ '.' ~ prefix ~ '_limb_p' -%}
    {%- set wide = exact_integer_type() -%}
    {{ return([
        (prefix ~ '_n', 'count(' ~ limb ~ '0)'),
        (prefix ~ '_sum_p0', 'sum(' ~ limb ~ '0)'),
        (prefix ~ '_sum_p30', 'sum(cast(' ~ limb ~ '30 as ' ~ wide ~ '))'),
        (prefix ~ '_sum_p60', 'sum(cast(' ~ limb ~ '60 as ' ~ wide ~ '))'),
        (prefix ~ '_square_sum_p0', 'sum(' ~ limb ~ '0 * ' ~ limb ~ '0)'),
        (prefix ~ '_square_sum_p30', 'sum(2 * ' ~ limb ~ '0 * ' ~ limb ~ '30)'),
        (prefix ~ '_square_sum_p60',
            'sum(cast(' ~ limb ~ '30 * ' ~ limb ~ '30 as ' ~ wide ~ ') + 2 * ' ~ limb ~ '0 * ' ~ limb ~ '60)'),
        (prefix ~ '_square_sum_p90', 'sum(cast(2 * ' ~ limb ~ '30 * ' ~ limb ~ '60 as ' ~ wide ~ '))'),
        (prefix ~ '_square_sum_p120', 'sum(cast(' ~ limb ~ '60 * ' ~ limb ~ '60 as ' ~ wide ~ '))'),
    ]) }}
{%- endmacro %}

{% macro exact_moment_sums(relation, prefix) -%}
    {%- for name, aggregate in exact_moment_parts(relation, prefix) %}
    {{ aggregate }} as {{ name }}{{ ',' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{% macro exact_moment_totals(relation, prefix) -%}
    {%- for name, _ in exact_moment_parts(relation, prefix) -%}
        {%- if loop.first %}
    cast(coalesce(sum({{ relation }}.{{ name }}), 0) as {{ dbt.type_bigint() }}) as {{ name }},
        {%- else %}
    cast(coalesce(sum({{ relation }}.{{ name }}), 0) as {{ dbt.type_string() }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{% macro exact_moment_columns(prefix) -%}
    {{ exact_moment_parts('', prefix) | map(attribute=0) | join(', ') }}
{%- endmacro %}

{% macro exact_integer_type() -%}
    {{ return(adapter.dispatch('exact_integer_type', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__exact_integer_type() -%}
    decimal(38, 0)
{%- endmacro %}

{% macro duckdb__exact_integer_type() -%}
    hugeint
{%- endmacro %}
