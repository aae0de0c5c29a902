{#- Exact sums of a value and of its square, kept as integer parts, so a
    mean or a sample variance can be computed from partial sums (per day,
    summed over days) exactly, with the same result however the rows were
    split into partials and in whatever order they were added.

    exact_sum() sums each part of a value as a decimal, but a square needs
    twice the decimal places (36) and overflows decimal(38, 18) for values
    above 100. So each value is cut into integer "limbs" (exact_limbs()): its
    image is limb_e0 + limb_e9 / 10^9 + limb_e18 / 10^18, the value to 18
    decimal places as exact_sum() rounds it (the engine's cast of its
    fraction to decimal(38, 18): within 1e-16 of the value); the
    square of the image is then a sum of products of limbs, each summed as an
    integer (exact_moment_sums()). Every part is named <prefix>_<moment>_e<k>
    and stands for its value times 10^-k: whoever reads the parts (the
    Python helper convo_warehouse.lib.exact_moments) takes the scale from the
    name. Values must stay below 1e15 in magnitude and each part's sum below
    1e38 (an engine raises on overflow). -#}

{#- Per row: the limbs of `expression` as three columns <prefix>_limb_e0,
    <prefix>_limb_e9 and <prefix>_limb_e18 (integers as decimal(38, 0), null
    when the value is). -#}
{% macro exact_limbs(expression, prefix) -%}
    {%- set fraction = 'cast(' ~ expression ~ ' - round(' ~ expression ~ ', 0) as decimal(38, 18))' -%}
    cast(round({{ expression }}, 0) as decimal(38, 0)) as {{ prefix }}_limb_e0,
    cast({{ fraction }} * 1000000000 as decimal(38, 0)) as {{ prefix }}_limb_e9,
    cast({{ fraction }} * 1000000000000000000 as decimal(38, 0))
    - cast({{ fraction }} * 1000000000 as decimal(38, 0)) * 1000000000 as {{ prefix }}_limb_e18
{%- endmacro %}

{#- The parts of `prefix` as (name, aggregate) pairs, count first: over
    the limbs <prefix>_limb_e* of `relation` (a CTE with exact_limbs()
    columns), <prefix>_n (values that are not null), the sum of the images
    as <prefix>_sum_e0/_e9/_e18 and the sum of their squares as
    <prefix>_square_sum_e0/_e9/_e18/_e27/_e36. -#}
{% macro exact_moment_parts(relation, prefix) -%}
    {%- set limb = relation ~ '.' ~ prefix ~ '_limb_e' -%}
    {{ return([
        (prefix ~ '_n', 'count(' ~ limb ~ '0)'),
        (prefix ~ '_sum_e0', 'sum(' ~ limb ~ '0)'),
        (prefix ~ '_sum_e9', 'sum(' ~ limb ~ '9)'),
        (prefix ~ '_sum_e18', 'sum(' ~ limb ~ '18)'),
        (prefix ~ '_square_sum_e0', 'sum(' ~ limb ~ '0 * ' ~ limb ~ '0)'),
        (prefix ~ '_square_sum_e9', 'sum(2 * ' ~ limb ~ '0 * ' ~ limb ~ '9)'),
        (prefix ~ '_square_sum_e18', 'sum(2 * ' ~ limb ~ '0 * ' ~ limb ~ '18 + ' ~ limb ~ '9 * ' ~ limb ~ '9)'),
        (prefix ~ '_square_sum_e27', 'sum(2 * ' ~ limb ~ '9 * ' ~ limb ~ '18)'),
        (prefix ~ '_square_sum_e36', 'sum(' ~ limb ~ '18 * ' ~ limb ~ '18)'),
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
