"""One row per seed test x seed variant: conversion results with the contract's statistics.

A dbt Python model because the p-values need the normal and chi-square
distributions (scipy), which SQL engines lack. The formulas live in
``convo_warehouse.lib.experiments`` (tested on their own) so the marts, the
CLI and the tests share one implementation. The public mart
``ab_test_results`` selects from this model under an enforced contract
(dbt does not enforce contracts on Python models).
"""

from convo_warehouse.lib import experiments as ex

SCHEMA = {
    "test_name": "string",
    "variant": "string",
    "variant_order": "Int64",
    "is_control": "boolean",
    "weight": "Float64",
    "sessions": "Int64",
    "conversions": "Int64",
    "conversion_rate": "Float64",
    "absolute_lift": "Float64",
    "relative_lift": "Float64",
    "z_score": "Float64",
    "p_value": "Float64",
    "ci_low": "Float64",
    "ci_high": "Float64",
    "is_significant": "boolean",
    "srm_chi_square": "Float64",
    "srm_p_value": "Float64",
    "srm_detected": "boolean",
    "enough_sample": "boolean",
    "total_sessions": "Int64",
    "has_enough_traffic": "boolean",
    "sequential_ci_low": "Float64",
    "sequential_ci_high": "Float64",
}


def model(dbt, session):
    # statistics over the summed counts: a table computed whole each run
    # (dbt reads a Python model's materialization from its own config)
    dbt.config(materialized="table")
    variants = dbt.ref("int_ab_test_variants_aggregated").df()
    variants = variants[variants["segment_type"] == "all"]
    variants = variants.astype(object).where(variants.notna(), None)
    rows = []
    for _, test_variants in variants.groupby("test_name", sort=True):
        rows.extend(ex.score_conversion_test(test_variants.to_dict("records")))
    return ex.records_to_frame(rows, SCHEMA)
