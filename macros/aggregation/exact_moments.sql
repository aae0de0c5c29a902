{#- Exact sums of a value and of its square, kept as integer parts, so a
    mean or a sample variance can be computed from partial sums (per day,
    summed over days) exactly, with the same result however the rows were
    split into partials and in whatever order they were added.

    exact_sum() sums each part of a value as a decimal, but a square needs
    twice the decimal places and overflows decimal(38, 18) for values above
    100. So each value is cut into integer "limbs" in base 2^30
    (exact_limbs()), with double arithmetic that is exact (scaling by a power
    of two, subtracting an integer from a nearby value): its image is
    limb_p0 + limb_p30 * 2^-30 + limb_p60 * 2^-60, the value rounded to a
    multiple of 2^-60 (within 4.4e-19 of it). The square of the image is a
    sum of products of limbs, each summed as an integer
    (exact_moment_parts()). Every part is named <prefix>_<moment>_p<k> and
    stands for its value times 2^-k: whoever reads the parts (the Python
    helper convo_warehouse.lib.exact_moments) takes the scale from the name.
    Values must stay below 1e15 in magnitude and each part's sum below 1e38
    (an engine raises on overflow). Only integer arithmetic is summed, so no
    engine's decimal rounding rules enter. -#}

{#- Per row: the limbs of `expression` as three columns <prefix>_limb_p0
    (the value rounded to an integer, as exact_integer_type()),
    <prefix>_limb_p30 and <prefix>_limb_p60 (the rest in units of 2^-30,
    rounded, then what is left in units of 2^-60, rounded: bigints of at
    most 2^29 in magnitude); null when the value is. -#}
{% macro exact_limbs(expression, prefix) -%}
    {%- set two_30 = 'cast(1073741824 as ' ~ type_double() ~ ')' -%}
    {%- set fraction = '(' ~ expression ~ ' - round(' ~ expression ~ ', 0))' -%}
    {%- set scaled = '(' ~ fraction ~ ' * ' ~ two_30 ~ ')' -%}
    cast(round({{ expression }}, 0) as {{ exact_integer_type() }}) as {{ prefix }}_limb_p0,
    cast(round({{ scaled }}, 0) as {{ dbt.type_bigint() }}) as {{ prefix }}_limb_p30,
    cast(round(({{ scaled }} - round({{ scaled }}, 0)) * {{ two_30 }}, 0) as {{ dbt.type_bigint() }})
    as {{ prefix }}_limb_p60
{%- endmacro %}

{#- The parts of `prefix` as (name, aggregate) pairs, count first: over
    the limbs <prefix>_limb_p* of `relation` (a CTE with exact_limbs()
    columns), <prefix>_n (values that are not null), the sum of the images
    as <prefix>_sum_p0/_p30/_p60 and the sum of their squares as
    <prefix>_square_sum_p0/_p30/_p60/_p90/_p120. Products of the small limbs
    fit a bigint; anything with limb_p0 and every sum is an
    exact_integer_type(). -#}
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

{#- Aggregates: the parts of `prefix` (exact_moment_parts()) as columns. -#}
{% macro exact_moment_sums(relation, prefix) -%}
    {%- for name, aggregate in exact_moment_parts(relation, prefix) %}
    {{ aggregate }} as {{ name }}{{ ',' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- Aggregates adding up partial sums: the parts of `prefix` in `relation`
    (a relation with exact_moment_sums() columns, e.g. one row per day),
    summed (0 without any row): the count as a bigint, the sums as text,
    since an integer of up to 38 digits reaches Python as a double through
    some engines' data frames, and text keeps every digit. -#}
{% macro exact_moment_totals(relation, prefix) -%}
    {%- for name, _ in exact_moment_parts(relation, prefix) -%}
        {%- if loop.first %}
    cast(coalesce(sum({{ relation }}.{{ name }}), 0) as {{ dbt.type_bigint() }}) as {{ name }},
        {%- else %}
    cast(coalesce(sum({{ relation }}.{{ name }}), 0) as {{ dbt.type_string() }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{#- The column names of the parts of `prefix`, comma-separated (to select
    them). -#}
{% macro exact_moment_columns(prefix) -%}
    {{ exact_moment_parts('', prefix) | map(attribute=0) | join(', ') }}
{%- endmacro %}

{#- An exact integer type of at least 38 digits for the limbs' products and
    sums: DuckDB's 128-bit HUGEINT (its arithmetic is several times faster
    than a decimal's), decimal(38, 0) elsewhere. -#}
{% macro exact_integer_type() -%}
    {{ return(adapter.dispatch('exact_integer_type', 'convo_warehouse')()) }}
{%- endmacro %}

{% macro default__exact_integer_type() -%}
    decimal(38, 0)
{%- endmacro %}

{% macro duckdb__exact_integer_type() -%}
    hugeint
{%- endmacro %}
