"""``landing_files_sensor``: a new file in the landing folder starts a run.

The sensor never opens the warehouse (a run may be writing to it). It lists
the landing folder and compares each accepted file's size and modification
time with what its cursor remembers, so a file triggers one run; an unchanged
folder triggers none. A file whose content changes (new size or mtime)
triggers again, and the loader then decides by content hash whether there is
anything new to load.
"""


import hashlib
import json
from pathlib import Path

import dagster as dg

from convo_warehouse.jobs import load_and_rebuild_job
from convo_warehouse.lib.landing import SUFFIXES
from convo_warehouse.resources import WarehouseResource


def landing_signatures(landing_dir: Path) -> dict[str, str]:
    """Relative path -> "size:mtime_ns" of every accepted file under ``landing_dir``."""
    if not landing_dir.is_dir():
        return {}
    signatures = {}
    for path in landing_dir.rglob("*"):
        if path.is_file() and path.name.lower().endswith(SUFFIXES):
            stat = path.stat()
            signatures[path.relative_to(landing_dir).as_posix()] = (
                f"{stat.st_size}:{stat.st_mtime_ns}"
            )
    return signatures


def new_files(previous: dict[str, str], current: dict[str, str]) -> list[str]:
    """Files that are new or changed since ``previous``, sorted."""
    return sorted(name for name, signature in current.items() if previous.get(name) != signature)


@dg.sensor(
    name="landing_files_sensor",
    job=load_and_rebuild_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts load_and_rebuild_job when new or changed files appear in the landing folder.",
)
def landing_files_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult:
    previous = json.loads(context.cursor) if context.cursor else {}
    current = landing_signatures(warehouse.landing)
    changed = new_files(previous, current)
    if not changed:
        return dg.SensorResult(
            skip_reason=f"no new files in {warehouse.landing}", cursor=json.dumps(current)
        )
    run_key = hashlib.sha256(
        json.dumps({name: current[name] for name in changed}, sort_keys=True).encode()
    ).hexdigest()[:16]
    context.log.info(f"{len(changed)} new file(s): {', '.join(changed[:10])}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"landing-{run_key}",
                tags={"convo_warehouse/new_files": str(len(changed))},
            )
        ],
        cursor=json.dumps(current, sort_keys=True),
    )
