"""One row per comparison x segment x scope x (depth) x step: where successful and failed conversations diverge.

A dbt Python model because the p-values need scipy. The statistics live in
``convo_warehouse.lib.patterns`` (tested on their own). The public mart
``path_divergence`` selects from this model under an enforced contract (dbt
does not enforce contracts on Python models).

Comparisons (population: finished conversations of fct_conversation_paths,
i.e. outcome not `in_progress`):

- ``overall``: started conversations; success = fct_conversation_paths.is_successful;
- ``funnel:<name>``: conversations that reached the funnel's first stage;
  success = reached its last stage.

Segments: ``all``/``all``, and for ``overall`` each A/B test's variants
(``experiment:<test_name>``/``<variant>``, non-contaminated exposures only).
"""

import pandas as pd

from convo_warehouse.lib import patterns


def among(ids, values):
    """``ids.isin(values)`` as one hash lookup: isin() on pandas' `str` dtype
    converts its values one by one, which was half this model's time."""
    return pd.Index(pd.unique(pd.Series(values))).get_indexer(ids) >= 0


def model(dbt, session):
    excluded_step_pattern = dbt.config.get("excluded_step_pattern")
    min_conversations = int(dbt.config.get("min_conversations"))
    max_depth = int(dbt.config.get("max_depth"))

    # Only the columns used are fetched: the steps are most of the history's rows.
    paths = dbt.ref("fct_conversation_paths").select("conversation_id", "outcome", "started", "is_successful").df()
    step_rows = dbt.ref("int_conversation_steps_cleaned").select("conversation_id", "step_number", "step").df()
    steps = patterns.StepTable.build(step_rows, excluded_step_pattern=excluded_step_pattern, max_depth=max_depth)
    del step_rows
    stages = dbt.ref("fct_conversation_stages").select("conversation_id", "funnel_name", "stage").df()
    funnel_stages = dbt.ref("int_funnel_stages_ordered").df()
    exposures = dbt.ref("ab_test_exposures").select("test_name", "variant", "conversation_id", "variant_count").df()

    finished = paths[paths["outcome"] != "in_progress"]

    def score(outcomes, comparison, segment_type="all", segment_value="all"):
        return patterns.score_divergence(
            outcomes,
            steps,
            comparison,
            segment_type=segment_type,
            segment_value=segment_value,
            min_conversations=min_conversations,
        )

    overall = finished[finished["started"].astype(bool)][["conversation_id", "is_successful"]]
    frames = [score(overall, "overall")]

    clean_exposures = exposures[exposures["variant_count"] == 1]
    for (test_name, variant), group in clean_exposures.groupby(["test_name", "variant"], sort=True):
        exposed = overall[among(overall["conversation_id"], group["conversation_id"])]
        frames.append(score(exposed, "overall", f"experiment:{test_name}", str(variant)))

    for funnel_name, funnel in funnel_stages.groupby("funnel_name", sort=True):
        first_stage = funnel.loc[funnel["is_first_stage"].astype(bool), "stage"].iloc[0]
        last_stage = funnel.loc[funnel["is_last_stage"].astype(bool), "stage"].iloc[0]
        reached = stages[stages["funnel_name"] == funnel_name]
        entered = reached.loc[reached["stage"] == first_stage, "conversation_id"]
        finished_funnel = reached.loc[reached["stage"] == last_stage, "conversation_id"]
        population = finished[among(finished["conversation_id"], entered)][["conversation_id"]].copy()
        population["is_successful"] = among(population["conversation_id"], finished_funnel)
        frames.append(score(population, f"funnel:{funnel_name}"))

    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=list(patterns.SCHEMA)).astype(patterns.SCHEMA)
    return pd.concat(frames, ignore_index=True).astype(patterns.SCHEMA)
