{% macro parse_event_timestamp(text_expression) -%}
    {{ return(adapter.dispatch('parse_event_timestamp', 'convo_warehouse')(text_expression)) }}
{%- endmacro %}

{% macro duckdb__parse_event_timestamp(text_expression) -%}
    case
        when {{ regex_full_match('trim(' ~ text_expression ~ ')', '-?[0-9]{1,15}') }}
            then epoch_ms(cast(trim({{ text_expression }}) as {{ dbt.type_bigint() }}))
        when {{ regex_full_match(
            'trim(' ~ text_expression ~ ')',
            '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,9})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?'
        ) }}
            then try_cast(trim({{ text_expression }}) as timestamptz) at time zone 'UTC'
    end
{%- endmacro %}

{#- Spark's cast gives the instant in the session time zone (UTC in our profiles)
    and reads only `+HH:MM` offsets, so `+HHMM` and `+HH` are rewritten first. -#}
{% macro spark__parse_event_timestamp(text_expression) -%}
    case
        when {{ regex_full_match('trim(' ~ text_expression ~ ')', '-?[0-9]{1,15}') }}
            then timestamp_millis(cast(trim({{ text_expression }}) as bigint))
        when {{ regex_full_match(
            'trim(' ~ text_expression ~ ')',
            '[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,9})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?'
        ) }}
            then to_utc_timestamp(
                cast(
                    regexp_replace(
                        regexp_replace(trim({{ text_expression }}), '([+-][0-9]{2})([0-9]{2})$', '$1:$2'),
                        '([+-][0-9]{2})$',
                        '$1:00'
                    ) as timestamp
                ),
                'UTC'
            )
    end
{%- endmacro %}
