"""Schedules: hourly incremental refresh, daily full build. Times are UTC."""

from __future__ import annotations

import dagster as dg

from convo_warehouse.jobs import build_all_job, load_and_rebuild_job

# "17 * * * *": minute 17 of every hour. Off the hour so it does not start
# together with other hourly jobs on a shared machine, and well clear of the
# daily build at 02:45 (if they ever overlap, the run queue serialises them:
# one writer at a time).
load_and_rebuild_job_schedule = dg.ScheduleDefinition(
    name="load_and_rebuild_job_schedule",
    job=load_and_rebuild_job,
    cron_schedule="17 * * * *",
    execution_timezone="UTC",
    description="Hourly: load new landing files and rebuild what they affect.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

# "45 2 * * *": 02:45 UTC daily, when yesterday's late files have usually
# landed, and before the working day in Europe starts.
build_all_job_schedule = dg.ScheduleDefinition(
    name="build_all_job_schedule",
    job=build_all_job,
    cron_schedule="45 2 * * *",
    execution_timezone="UTC",
    description="Daily: build every asset including stage classification.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

schedules = [load_and_rebuild_job_schedule, build_all_job_schedule]
