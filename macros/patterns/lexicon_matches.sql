{% macro lexicon_matches(texts_cte, text_expression, columns, lexicon_relation, label_column, pattern_column) -%}
    {%- set carried_columns -%}
        {%- for column in columns %}
        {{ texts_cte }}.{{ column }},
        {%- endfor %}
    {%- endset -%}
    {%- if execute and not lexicon_relation.is_cte and load_relation(lexicon_relation) is not none -%}
        {%- set lexicon = run_query(
            'select ' ~ label_column ~ ', ' ~ pattern_column ~ ' from ' ~ lexicon_relation
            ~ ' order by 1, 2'
        ) -%}
        {%- for label, pattern in lexicon.rows %}
    select
        {{- carried_columns }}
        {{ string_literal(label) }} as {{ label_column }}
    from {{ texts_cte }}
    where {{ regex_contains(text_expression, string_literal(pattern)) }}
            {%- if not loop.last %}
    union all
            {%- endif %}
        {%- else %}
    select
        {{- carried_columns }}
        cast(null as {{ dbt.type_string() }}) as {{ label_column }}
    from {{ texts_cte }}
    where false
        {%- endfor %}
    {%- else %}
    select
        {{- carried_columns }}
        lexicon.{{ label_column }}
    from {{ texts_cte }}
    inner join {{ lexicon_relation }} as lexicon
        on {{ regex_contains(text_expression, 'lexicon.' ~ pattern_column) }}
    {%- endif %}
{%- endmacro %}
