{#- Identifier typing in base_events_parsed (contract: an identifier sent as
    a JSON object, array or boolean is quarantined as invalid_field_type; a
    number is taken as its decimal text). `relation` has, for `field`
    (event_id, conversation_id, user_id): <field>_sent_as (the name it came
    under), <field>_text, <field>_alias_json, <field>_kind and typed_fields. -#}

{#- The JSON kind the identifier was sent as: a loader column's from
    typed_fields (where the loader keeps every identifier not sent as text;
    absent there means a string), a seed alias's from its JSON value. Rows
    without typed_fields (most) sent every field as a JSON string under its
    own name, and skip the JSON reads. -#}
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

{#- The identifier's text: a number as its decimal text, anything else as sent. -#}
{% macro identifier_text(relation, field) -%}
    case
        when {{ relation }}.{{ field }}_kind = 'number'
            then {{ json_number_text(relation ~ '.' ~ field ~ '_text') }}
        else {{ relation }}.{{ field }}_text
    end
{%- endmacro %}

{#- Null, or what is wrong with the identifier's type, naming the field and
    the name it was sent under: "event_id (sent as id) is a JSON object". -#}
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
