"""``audit/pipeline_runs``: the last step of a run, marking it complete.

It depends on every asset nothing else depends on, so it runs only after
every other step of the run succeeded (a failed step or a failed blocking
check skips it). The loader noted the run's build fingerprint and newest load
when it started; this marks that record complete, which is what lets the next
run with nothing new skip building (``lib/run_state.py``).
"""

from collections.abc import Iterable

import dagster as dg

# The modules, not the assets: Dagster collects every asset a module holds.
from convo_warehouse.assets import dbt as dbt_assets
from convo_warehouse.assets import serving as serving_assets
from convo_warehouse.lib.run_state import record_run_complete
from convo_warehouse.lib.warehouse import writer_lock
from convo_warehouse.resources import WarehouseResource

PIPELINE_RUNS = dg.AssetKey(["audit", "pipeline_runs"])


def terminal_assets(upstreams: dict[dg.AssetKey, Iterable[dg.AssetKey]]) -> list[dg.AssetKey]:
    """Assets no other asset in ``upstreams`` (asset -> its upstream assets) depends on."""
    depended_on = {parent for parents in upstreams.values() for parent in parents}
    return sorted((key for key in upstreams if key not in depended_on), key=lambda key: key.path)


_UPSTREAMS = {
    **{key: set(parents) for key, parents in dbt_assets.dbt_models.asset_deps.items()},
    **{key: set(parents) for key, parents in serving_assets.snapshot.asset_deps.items()},
}


@dg.asset(
    key=PIPELINE_RUNS,
    deps=terminal_assets(_UPSTREAMS),
    group_name="audit",
    kinds={"python", "duckdb"},
    description=(
        "One row per pipeline run that loaded or built something: job, build fingerprint "
        "(project files, seeds, vars, classifier settings), newest load built from, start and "
        "completion times. A run with nothing new since the last complete one builds nothing."
    ),
)
def pipeline_runs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Mark this run complete (every step before it succeeded)."""
    with writer_lock(warehouse.database), warehouse.connect() as con:
        closed = record_run_complete(con, context.run.run_id)
    if not closed:
        context.log.info("no loader step in this run: nothing to mark complete")
    return dg.MaterializeResult(metadata={"run_marked_complete": bool(closed)})
