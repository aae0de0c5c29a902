"""One row per seed test x segment (all, and each channel): is the test itself healthy?

Sample ratio mismatch per segment (chi-square against the seed's weights),
contamination (conversations that saw several variants), exposures that
disagree with the assignment rule, traffic sufficiency, and for the `all`
segment the one-line verdict the CLI prints. A Python model for scipy's
chi-square distribution; the public mart ``ab_test_health`` selects from it
under a contract.
"""

from convo_warehouse.lib import experiments as ex

SCHEMA = {
    "test_name": "string",
    "segment_type": "string",
    "segment_value": "string",
    "variants": "Int64",
    "exposed_conversations": "Int64",
    "contaminated_conversations": "Int64",
    "contamination_rate": "Float64",
    "assignment_mismatches": "Int64",
    "assignment_mismatch_rate": "Float64",
    "sessions": "Int64",
    "srm_chi_square": "Float64",
    "srm_p_value": "Float64",
    "srm_detected": "boolean",
    "has_enough_traffic": "boolean",
    "enough_sample": "boolean",
    "problems": "string",
    "is_healthy": "boolean",
    "verdict": "string",
}


def model(dbt, session):
    # statistics over the summed counts: a table computed whole each run
    # (dbt reads a Python model's materialization from its own config)
    dbt.config(materialized="table")
    variants = dbt.ref("int_ab_test_variants_aggregated").df()
    variants = variants.astype(object).where(variants.notna(), None)
    quality = dbt.ref("int_ab_test_exposure_quality").df()
    quality = {
        (row["test_name"], row["segment_type"], row["segment_value"]): row
        for row in quality.to_dict("records")
    }
    rows = []
    keys = ["test_name", "segment_type", "segment_value"]
    for (test_name, segment_type, segment_value), segment in variants.groupby(keys, sort=True):
        ordered = segment.sort_values(["variant_order", "variant"]).to_dict("records")
        sessions = [int(v["sessions"]) for v in ordered]
        srm = ex.sample_ratio_mismatch(sessions, [v["weight"] for v in ordered])
        counts = quality.get((test_name, segment_type, segment_value), {})
        exposed = int(counts.get("exposed_conversations", 0))
        contaminated = int(counts.get("contaminated_conversations", 0))
        mismatches = int(counts.get("assignment_mismatches", 0))
        enough_traffic = ex.has_enough_traffic(sum(sessions), len(ordered))
        enough_sample = ex.has_enough_sample(sessions, [int(v["conversions"]) for v in ordered])
        problems = ex.health_problems(
            srm_detected=srm.detected,
            srm_p_value=srm.p_value,
            contamination_rate=ex.rate(contaminated, exposed),
            mismatch_rate=ex.rate(mismatches, exposed),
            enough_traffic=enough_traffic,
        )
        verdict = None
        if segment_type == "all":
            results = ex.score_conversion_test(ordered)
            verdict = ex.verdict([r for r in results if not r["is_control"]], problems, enough_sample)
        rows.append(
            {
                "test_name": test_name,
                "segment_type": segment_type,
                "segment_value": segment_value,
                "variants": len(ordered),
                "exposed_conversations": exposed,
                "contaminated_conversations": contaminated,
                "contamination_rate": ex.rate(contaminated, exposed),
                "assignment_mismatches": mismatches,
                "assignment_mismatch_rate": ex.rate(mismatches, exposed),
                "sessions": sum(sessions),
                "srm_chi_square": srm.chi_square,
                "srm_p_value": srm.p_value,
                "srm_detected": srm.detected,
                "has_enough_traffic": enough_traffic,
                "enough_sample": enough_sample,
                "problems": "; ".join(problems) or None,
                "is_healthy": not problems,
                "verdict": verdict,
            }
        )
    return ex.records_to_frame(rows, SCHEMA)
