"""Where successful and failed conversations diverge: pure functions, no Dagster.

The dbt Python model ``models/marts/patterns/path_divergence_scored.py`` calls
:func:`score_divergence`; tests call it directly.

For one comparison (a population of finished conversations, each successful
or not) and each candidate step, a 2x2 table:

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

import re
from dataclasses import dataclass

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


def _score_tables(counts: pd.DataFrame, successful_total: int, failed_total: int) -> pd.DataFrame:
    """Statistics for rows with ``successful_with_step`` and ``failed_with_step``."""
    a = counts["successful_with_step"].to_numpy(dtype=float)
    b = counts["failed_with_step"].to_numpy(dtype=float)
    c = successful_total - a
    d = failed_total - b
    statistic = chi_square_2x2(a, b, c, d)
    p_values, methods = _p_values(a, b, c, d, statistic)
    scored = counts.copy()
    scored["successful_conversations"] = successful_total
    scored["failed_conversations"] = failed_total
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


@dataclass(frozen=True)
class StepTable:
    """The candidate steps of every conversation as integer codes, built once and scored per population.

    Rows whose step matches ``excluded_step_pattern`` are dropped here;
    ``anywhere_*`` hold each (conversation, step) pair once, ``depth_*``
    the rows with ``step_number <= max_depth``.
    """

    conversation_ids: pd.Index
    step_names: np.ndarray
    anywhere_conversation: np.ndarray
    anywhere_step: np.ndarray
    depth_conversation: np.ndarray
    depth_step: np.ndarray
    depth: np.ndarray

    @classmethod
    def build(cls, steps: pd.DataFrame, excluded_step_pattern: str | None = None, max_depth: int = 15):
        conversation_codes, conversation_ids = pd.factorize(steps["conversation_id"])
        step_codes, step_names = pd.factorize(steps["step"])
        keep = np.ones(len(steps), dtype=bool)
        if excluded_step_pattern:
            pattern = re.compile(excluded_step_pattern)
            excluded = np.array([bool(pattern.search(str(name))) for name in step_names], dtype=bool)
            if len(excluded):
                keep = ~excluded[step_codes]
        conversation_codes = conversation_codes[keep].astype(np.int64)
        step_codes = step_codes[keep].astype(np.int64)
        step_numbers = steps["step_number"].to_numpy(dtype=np.int64)[keep]
        pairs = pd.unique(conversation_codes * max(len(step_names), 1) + step_codes)  # hashing: faster than sorting
        within_depth = step_numbers <= max_depth
        return cls(
            conversation_ids=pd.Index(conversation_ids),
            step_names=np.asarray(step_names, dtype=object),
            anywhere_conversation=pairs // max(len(step_names), 1),
            anywhere_step=pairs % max(len(step_names), 1),
            depth_conversation=conversation_codes[within_depth],
            depth_step=step_codes[within_depth],
            depth=step_numbers[within_depth],
        )


def score_divergence(
    outcomes: pd.DataFrame,
    steps: pd.DataFrame | StepTable,
    comparison: str,
    segment_type: str = "all",
    segment_value: str = "all",
    excluded_step_pattern: str | None = None,
    min_conversations: int = 10,
    max_depth: int = 15,
) -> pd.DataFrame:
    """Divergence rows of one comparison and segment.

    ``outcomes``: one row per conversation of the population
    (``conversation_id``, ``is_successful``). ``steps``: one row per
    conversation x step (``conversation_id``, ``step_number``, ``step``), or
    a :class:`StepTable` built from them once (then ``excluded_step_pattern``
    and ``max_depth`` are the table's); rows of conversations outside
    ``outcomes`` are ignored. Steps matching ``excluded_step_pattern`` (a
    regex searched in the token) are not candidates. A step (or step at a
    depth) is tested when at least ``min_conversations`` conversations of the
    population have it. Returns nothing when either group is empty.
    """
    table = steps if isinstance(steps, StepTable) else StepTable.build(steps, excluded_step_pattern, max_depth)
    outcomes = outcomes[["conversation_id", "is_successful"]].drop_duplicates("conversation_id")
    successful_total = int(outcomes["is_successful"].astype(bool).sum())
    failed_total = int(len(outcomes) - successful_total)
    if successful_total == 0 or failed_total == 0:
        return pd.DataFrame(columns=list(SCHEMA)).astype(SCHEMA)

    # per conversation code: 1 successful, 0 failed, -1 outside the population
    group = np.full(len(table.conversation_ids), -1, dtype=np.int8)
    positions = table.conversation_ids.get_indexer(outcomes["conversation_id"])
    found = positions >= 0
    group[positions[found]] = outcomes["is_successful"].astype(bool).to_numpy()[found].astype(np.int8)

    step_count = len(table.step_names)
    anywhere_group = group[table.anywhere_conversation]
    depth_group = group[table.depth_conversation]
    max_depth_seen = int(table.depth.max()) if len(table.depth) else 0
    scopes = [
        _score_scope(
            keys=table.anywhere_step, groups=anywhere_group, key_count=step_count,
            depth_of=lambda keys: np.full(len(keys), -1), step_of=lambda keys: keys,
            step_names=table.step_names, scope="anywhere", min_conversations=min_conversations,
            successful_total=successful_total, failed_total=failed_total,
        ),
        _score_scope(
            keys=table.depth * step_count + table.depth_step, groups=depth_group,
            key_count=(max_depth_seen + 1) * step_count,
            depth_of=lambda keys: keys // max(step_count, 1), step_of=lambda keys: keys % max(step_count, 1),
            step_names=table.step_names, scope="at_depth", min_conversations=min_conversations,
            successful_total=successful_total, failed_total=failed_total,
        ),
    ]
    scored = pd.concat([frame for frame in scopes if len(frame)] or [pd.DataFrame(columns=list(SCHEMA))])
    scored = scored.reset_index(drop=True)
    scored["comparison"] = comparison
    scored["segment_type"] = segment_type
    scored["segment_value"] = segment_value
    scored["is_first_divergence"] = False
    at_depth_rows = scored[(scored["scope"] == "at_depth") & scored["is_significant"].astype(bool)]
    if len(at_depth_rows):
        first_depth = at_depth_rows["depth"].min()
        first = at_depth_rows[at_depth_rows["depth"] == first_depth].sort_values(
            ["statistic", "step"], ascending=[False, True], kind="mergesort"
        )
        scored.loc[first.index[0], "is_first_divergence"] = True
    return scored[list(SCHEMA)].astype(SCHEMA)


def _score_scope(
    keys, groups, key_count, depth_of, step_of, step_names, scope, min_conversations, successful_total, failed_total
) -> pd.DataFrame:
    """Count (depth, step) keys per group with bincount and score those with enough conversations.

    One scope is one family for ranking and Bonferroni.
    """
    in_population = groups >= 0
    keys = keys[in_population]
    successful = np.bincount(keys, weights=groups[in_population] == 1, minlength=key_count)
    failed = np.bincount(keys, weights=groups[in_population] == 0, minlength=key_count)
    tested = np.flatnonzero(successful + failed >= min_conversations)
    if not len(tested):
        return pd.DataFrame()
    depths = depth_of(tested)
    counts = pd.DataFrame({
        "depth": pd.array(np.where(depths < 0, 0, depths), dtype="Int64"),
        "step": step_names[step_of(tested)],
        "successful_with_step": successful[tested].astype(np.int64),
        "failed_with_step": failed[tested].astype(np.int64),
    })
    if scope == "anywhere":
        counts["depth"] = pd.array([None] * len(counts), dtype="Int64")
    return _score_tables(counts, successful_total, failed_total).assign(scope=scope)
