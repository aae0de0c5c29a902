"""Where successful and failed conversations diverge: pure functions, no Dagster.

The dbt model ``path_divergence_counted`` counts, per comparison (a
population of finished conversations, each successful or not) and candidate
step, how many conversations of each group have the step; the dbt Python
model ``path_divergence_scored`` passes those counts to :func:`score_counts`;
tests call it directly. For each step, a 2x2 table:

===============  ==========  ==========
                 successful  failed
===============  ==========  ==========
has the step     a           b
lacks the step   c           d
===============  ==========  ==========

``statistic`` is Pearson's chi-square of that table without continuity
correction, ``N (ad - bc)^2 / ((a+b)(c+d)(a+c)(b+d))`` (df = 1); it ranks the
steps of a scope (larger = the two groups differ more, weighted by how many
conversations the step touches). ``p_value`` is the chi-square p-value, or
Fisher's exact test (two-sided) when an expected count is below 5.
``p_value_adjusted`` is Bonferroni over the steps tested in the same
comparison, segment and scope. Steps are tested anywhere in the path
(scope ``anywhere``) and at each depth (scope ``at_depth``); the first point
of divergence is the smallest depth with a significant step (adjusted
p < 0.05), and there the step with the largest statistic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

#: adjusted p-value under which a step is called significant.
ALPHA = 0.05
#: expected count below which Fisher's exact test replaces chi-square.
MIN_EXPECTED = 5.0

SCHEMA = {
    "comparison": "string",
    "segment_type": "string",
    "segment_value": "string",
    "scope": "string",
    "depth": "Int64",
    "step": "string",
    "successful_with_step": "Int64",
    "successful_conversations": "Int64",
    "failed_with_step": "Int64",
    "failed_conversations": "Int64",
    "share_successful": "Float64",
    "share_failed": "Float64",
    "share_difference": "Float64",
    "more_common_in": "string",
    "statistic": "Float64",
    "p_value": "Float64",
    "test_method": "string",
    "p_value_adjusted": "Float64",
    "is_significant": "boolean",
    "divergence_rank": "Int64",
    "is_first_divergence": "boolean",
}


def chi_square_2x2(a, b, c, d) -> np.ndarray:
    """Pearson's chi-square of 2x2 tables (vectorised); 0 where a margin is 0."""
    a, b, c, d = (np.asarray(x, dtype=float) for x in (a, b, c, d))
    n = a + b + c + d
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = n * (a * d - b * c) ** 2 / denominator
    return np.where(denominator > 0, statistic, 0.0)


def _p_values(a, b, c, d, statistic) -> tuple[np.ndarray, np.ndarray]:
    """p-values and the test used per table: chi-square, or Fisher when an expected count is < 5."""
    a, b, c, d = (np.asarray(x, dtype=float) for x in (a, b, c, d))
    n = a + b + c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        smallest_expected = np.minimum(a + b, c + d) * np.minimum(a + c, b + d) / n
    p_values = stats.chi2.sf(statistic, 1)
    methods = np.full(len(a), "chi_square", dtype=object)
    small = smallest_expected < MIN_EXPECTED
    for i in np.flatnonzero(small):
        p_values[i] = stats.fisher_exact([[a[i], b[i]], [c[i], d[i]]]).pvalue
        methods[i] = "fisher_exact"
    return p_values, methods


def _score_family(family: pd.DataFrame) -> pd.DataFrame:
    """Statistics for one family's rows (``successful_with_step``, ``failed_with_step`` and the group sizes)."""
    a = family["successful_with_step"].to_numpy(dtype=float)
    b = family["failed_with_step"].to_numpy(dtype=float)
    successful_total = family["successful_conversations"].to_numpy(dtype=float)
    failed_total = family["failed_conversations"].to_numpy(dtype=float)
    c = successful_total - a
    d = failed_total - b
    statistic = chi_square_2x2(a, b, c, d)
    p_values, methods = _p_values(a, b, c, d, statistic)
    scored = family.copy()
    scored["share_successful"] = a / successful_total
    scored["share_failed"] = b / failed_total
    scored["share_difference"] = scored["share_successful"] - scored["share_failed"]
    scored["more_common_in"] = np.where(
        scored["share_difference"] > 0, "successful", np.where(scored["share_difference"] < 0, "failed", "neither")
    )
    scored["statistic"] = statistic
    scored["p_value"] = p_values
    scored["test_method"] = methods
    scored["p_value_adjusted"] = np.minimum(1.0, p_values * len(scored))
    scored["is_significant"] = scored["p_value_adjusted"] < ALPHA
    scored = scored.sort_values(["statistic", "depth", "step"], ascending=[False, True, True], kind="mergesort")
    scored["divergence_rank"] = np.arange(1, len(scored) + 1)
    return scored


#: the columns of one family of tests (ranked and Bonferroni-adjusted together).
FAMILY = ["comparison", "segment_type", "segment_value", "scope"]


def score_counts(counts: pd.DataFrame) -> pd.DataFrame:
    """Divergence rows from step counts, one row per comparison x segment x scope x depth x step.

    ``counts`` (the dbt model ``path_divergence_counted``): ``comparison``,
    ``segment_type``, ``segment_value``, ``scope`` (``anywhere``, depth null,
    or ``at_depth``), ``depth``, ``step``, ``successful_with_step``,
    ``failed_with_step`` and the group sizes ``successful_conversations`` and
    ``failed_conversations``; only steps to test (the model applies the
    minimum number of conversations and drops populations lacking a group).
    Each comparison x segment x scope is one family for the ranking and
    Bonferroni; per comparison x segment, the first point of divergence is
    the smallest depth with a significant ``at_depth`` step, and there the
    step with the largest statistic (then the first step by name).
    """
    if counts.empty:
        return pd.DataFrame(columns=list(SCHEMA)).astype(SCHEMA)
    families = [_score_family(family) for _, family in counts.groupby(FAMILY, sort=True, dropna=False)]
    scored = pd.concat(families, ignore_index=True)
    scored["is_first_divergence"] = False
    significant = scored[(scored["scope"] == "at_depth") & scored["is_significant"].astype(bool)]
    if len(significant):
        first = significant.sort_values(
            ["comparison", "segment_type", "segment_value", "depth", "statistic", "step"],
            ascending=[True, True, True, True, False, True],
            kind="mergesort",
        ).drop_duplicates(["comparison", "segment_type", "segment_value"])
        scored.loc[first.index, "is_first_divergence"] = True
    return scored[list(SCHEMA)].astype(SCHEMA)
