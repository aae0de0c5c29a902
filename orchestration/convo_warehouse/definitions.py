"""The Dagster code location: merges assets, checks, jobs, schedules, sensors, resources.

Nothing here computes or connects: loading this module reads the dbt
manifest (run ``dbt parse`` first outside ``dagster dev``) and builds
definitions only.
"""

from __future__ import annotations

import dagster as dg

from convo_warehouse.assets import ingest, run_state, serving
from convo_warehouse.assets.dbt import dbt_models
from convo_warehouse.checks.alerts import METRIC_ALERTS, metric_alerts_check
from convo_warehouse.checks.gx_checks import gx_asset_checks
from convo_warehouse.jobs import build_all_job, load_and_rebuild_job
from convo_warehouse.project import dbt_executable, dbt_project
from convo_warehouse.resources import ProjectDbtCliResource, SparkDbtCliResource, WarehouseResource
from convo_warehouse.schedules import schedules
from convo_warehouse.sensors import landing_files_sensor
from convo_warehouse.spark.target import on_spark, spark_dbt_executable, spark_dbt_target

# serving: the published snapshot, downstream of every mart; run_state: the
# last step of a run, marking it complete. With CONVO_TARGET=spark (docs/spark.md)
# both, the GX suites and the alerts check stay DuckDB features (they read
# the DuckDB file), and the Python models are a Spark step of their own.
_on_spark = on_spark()
_asset_modules = [ingest] if _on_spark else [ingest, serving, run_state]
_spark_python_models = []
if _on_spark:
    from convo_warehouse.assets.spark_models import SPARK_PYTHON_MODELS, SPARK_RUN_RECORD

    _spark_python_models = [*SPARK_PYTHON_MODELS, SPARK_RUN_RECORD]

_alert_checks = [metric_alerts_check] if METRIC_ALERTS in dbt_models.keys and not _on_spark else []

defs = dg.Definitions(
    assets=[*dg.load_assets_from_modules(_asset_modules), dbt_models, *_spark_python_models],
    asset_checks=[
        *([] if _on_spark else gx_asset_checks),
        *_alert_checks,
        *dg.load_asset_checks_from_modules(_asset_modules),
    ],
    jobs=[load_and_rebuild_job, build_all_job],
    schedules=schedules,
    sensors=[landing_files_sensor],
    resources={
        "dbt": (
            SparkDbtCliResource(project_dir=dbt_project, dbt_executable=spark_dbt_executable(),
                                 target=spark_dbt_target())
            if _on_spark
            else ProjectDbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
        ),
        "warehouse": WarehouseResource(),
    },
    # One writer at a time: the steps of a run execute one after another in
    # the run's process (DuckDB allows a single writing process).
    executor=dg.in_process_executor,
)
