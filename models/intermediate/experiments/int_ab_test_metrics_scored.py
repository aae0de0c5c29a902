"""One row per seed test x seed variant x metric: secondary and guardrail metrics with tests.

Rates by the pooled z-test, means by Welch's t-test, Holm's adjustment over
each test's non-guardrail metrics x non-control variants; see
``convo_warehouse.lib.experiments.score_metrics``. The means and sample
variances are computed here, exactly, from the exact sums
int_ab_test_variants_aggregated adds up over days
(``convo_warehouse.lib.exact_moments``). A Python model for scipy's
distributions; the public mart ``ab_test_metrics`` selects from it under a
contract.
"""

from convo_warehouse.lib import exact_moments
from convo_warehouse.lib import experiments as ex

SCHEMA = {
    "test_name": "string",
    "variant": "string",
    "is_control": "boolean",
    "metric_name": "string",
    "metric_role": "string",
    "metric_type": "string",
    "higher_is_better": "boolean",
    "sample_size": "Int64",
    "value": "Float64",
    "control_value": "Float64",
    "difference": "Float64",
    "relative_difference": "Float64",
    "test_statistic": "Float64",
    "p_value": "Float64",
    "p_value_adjusted": "Float64",
    "ci_low": "Float64",
    "ci_high": "Float64",
    "sequential_ci_low": "Float64",
    "sequential_ci_high": "Float64",
    "is_significant": "boolean",
    "guardrail_breached": "boolean",
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
        records = test_variants.to_dict("records")
        for record in records:
            for prefix in ex.MEAN_METRIC_PREFIXES.values():
                _, record[f"{prefix}_mean"], record[f"{prefix}_variance"] = exact_moments.mean_and_variance(
                    record, prefix
                )
        rows.extend(ex.score_metrics(records))
    return ex.records_to_frame(rows, SCHEMA)
