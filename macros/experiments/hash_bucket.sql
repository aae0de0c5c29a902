{% macro hash_bucket(text_expr, n_expr) -%}
    {{ return(adapter.dispatch('hash_bucket', 'convo_warehouse')(text_expr, n_expr)) }}
{%- endmacro %}

{% macro duckdb__hash_bucket(text_expr, n_expr) -%}
    list_reduce(
        list_transform(
            string_split(sha256({{ text_expr }}), ''),
            hex_char -> instr('0123456789abcdef', hex_char) - 1
        ),
        (acc, digit) -> (acc * 16 + digit) % ({{ n_expr }}),
        cast(0 as {{ dbt.type_bigint() }})
    )
{%- endmacro %}

{% macro spark__hash_bucket(text_expr, n_expr) -%}
    aggregate(
        transform(
            sequence(1, 64),
            position -> instr('0123456789abcdef', substr(sha2({{ text_expr }}, 256), position, 1)) - 1
        ),
        cast(0 as bigint),
        (acc, digit) -> (acc * 16 + digit) % ({{ n_expr }})
    )
{%- endmacro %}

{% macro default__hash_bucket(text_expr, n_expr) -%}
    {{ exceptions.raise_compiler_error(
        "hash_bucket has no implementation for adapter '" ~ adapter.type() ~ "': "
        ~ "add <adapter>__hash_bucket in macros/experiments/hash_bucket.sql "
        ~ "(sha256 as hex, then acc = (acc * 16 + digit) % n over its 64 characters)."
    ) }}
{%- endmacro %}
