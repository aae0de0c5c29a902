{% macro json_number_text(number_text_expression) -%}
    {{ return(adapter.dispatch('json_number_text', 'convo_warehouse')(number_text_expression)) }}
{%- endmacro %}

{% macro default__json_number_text(number_text_expression) -%}
    case
        when {{ regex_full_match(number_text_expression, '-?[0-9]+') }} then {{ number_text_expression }}
        when
            cast({{ number_text_expression }} as double)
            = floor(cast({{ number_text_expression }} as double))
            and abs(cast({{ number_text_expression }} as double)) < 9.2e18
            then cast(cast(cast({{ number_text_expression }} as double) as bigint) as string)
        else cast(cast({{ number_text_expression }} as double) as string)
    end
{%- endmacro %}

{% macro duckdb__json_number_text(number_text_expression) -%}
    case
        when {{ regex_full_match(number_text_expression, '-?[0-9]+') }} then {{ number_text_expression }}
        when
            try_cast({{ number_text_expression }} as double)
            = floor(try_cast({{ number_text_expression }} as double))
            and abs(try_cast({{ number_text_expression }} as double)) < 9.2e18
            then cast(cast(try_cast({{ number_text_expression }} as double) as bigint) as varchar)
        else cast(try_cast({{ number_text_expression }} as double) as varchar)
    end
{%- endmacro %}
