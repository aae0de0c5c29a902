{#- One row per model x price period of seeds/model_prices.csv: the required
    columns typed, the optional note, the model as it is matched (lower-case,
    trimmed) and the period's end: the model's next valid_from (null for its
    current price). A message is priced by the period holding its time. -#}
with

model_prices as (
    {{ seed_with_defaults(
        'model_prices',
        required_columns={
            'model': dbt.type_string(),
            'input_price_per_million': type_double(),
            'output_price_per_million': type_double(),
            'valid_from': type_date(),
        },
        optional_columns={
            'note': [dbt.type_string(), 'null'],
        },
    ) | indent(4) }}
),

price_periods as (
    select
        lower(trim(model_prices.model)) as model_key,
        model_prices.model,
        model_prices.input_price_per_million,
        model_prices.output_price_per_million,
        model_prices.valid_from,
        lead(model_prices.valid_from) over (
            partition by lower(trim(model_prices.model))
            order by model_prices.valid_from
        ) as valid_until,
        model_prices.note
    from model_prices
)

select * from price_periods
