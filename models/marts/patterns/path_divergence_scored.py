"""One row per comparison x segment x scope x (depth) x step: where successful and failed conversations diverge.

A dbt Python model because the p-values need scipy. The counts come from
``path_divergence_counted`` (SQL: the populations, the candidate steps and
who has them); the statistics live in ``convo_warehouse.lib.patterns``
(tested on their own). The public mart ``path_divergence`` selects from this
model under an enforced contract (dbt does not enforce contracts on Python
models).
"""

from convo_warehouse.lib import patterns


def model(dbt, session):
    # statistics over the summed counts: a table computed whole each run
    # (dbt reads a Python model's materialization from its own config)
    dbt.config(materialized="table")
    return patterns.score_counts(dbt.ref("path_divergence_counted").df())
