{% macro sent_json_kind(relation, field) -%}
    case
        when {{ relation }}.{{ field }}_sent_as is null then null
        when {{ relation }}.typed_fields is null then 'string'
        when {{ relation }}.{{ field }}_sent_as in (
            'event_id', 'conversation_id', 'session_id', 'user_id', 'customer_id'
        )
            then coalesce(
                {{ json_object_kind(json_value_at(relation ~ '.typed_fields', relation ~ '.' ~ field ~ '_sent_as')) }},
                'string'
            )
        else {{ json_object_kind(relation ~ '.' ~ field ~ '_alias_json') }}
    end
{%- endmacro %}

{% macro identifier_text(relation, field) -%}
    case
        when {{ relation }}.{{ field }}_kind = 'number'
            then {{ json_number_text(relation ~ '.' ~ field ~ '_text') }}
        else {{ relation }}.{{ field }}_text
    end
{%- endmacro %}

{% macro identifier_type_error(relation, field, invalid_kinds) -%}
    case
        when {{ relation }}.{{ field }}_kind in {{ invalid_kinds }}
            then '{{ field }}'
            || case
                when {{ relation }}.{{ field }}_sent_as <> '{{ field }}'
                    then ' (sent as ' || {{ relation }}.{{ field }}_sent_as || ')'
                else ''
            end
            || ' is a JSON ' || {{ relation }}.{{ field }}_kind
    end
{%- endmacro %}
