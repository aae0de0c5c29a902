"""The order test files start in under xdist: the longest first."""

from __future__ import annotations

# Test files in the order they start, longest first (the rest follow in
# collection order). `make pytest` runs `--dist loadfile --no-loadscope-reorder`:
# xdist hands whole files to its workers in collection order, so the files
# that run whole pipelines start first and the short ones fill in at the end,
# rather than one long file running alone while the other worker idles.
# Measured per-file durations: benchmarks/results/2026-12-02-both-sizes.md (make test).
LONGEST_FIRST = (
    "warehouse/test_incremental_equals_full_build.py",
    "project/test_sql_style.py",
    "serving/test_dashboard.py",
    "orchestration/test_dagster_job.py",
    "warehouse/test_metrics_marts.py",
    "serving/test_read_api_and_commands.py",
    "classification/test_reads_changed_transcripts_only.py",
    "warehouse/test_quality_marts.py",
    "warehouse/test_events_stored_once.py",
    "warehouse/test_build_checks_what_it_writes.py",
    "orchestration/test_dbt_process.py",
    "warehouse/test_seed_optional_columns.py",
    "experiments/test_experiment_pipeline.py",
    "orchestration/test_dagster_ui_browser.py",
    "landing/test_load_and_stage.py",
    "warehouse/test_funnel_marts.py",
    "warehouse/test_marts_equal_reference.py",
    "live/test_live_equals_batch.py",
    # long only where the embeddings extra and model are installed (CI's `make test`)
    "warehouse/test_semantic_rephrases.py",
    "warehouse/test_data_tests_check_the_runs_scope.py",
    "capture/test_sdk_to_marts.py",
    "spark/test_spark_target.py",
    "warehouse/test_contract_v11_fields.py",
    "serving/test_snapshot_publish.py",
    "serving/test_semantic_layer.py",
    "warehouse/test_pattern_marts.py",
)


def start_order(names: list[str]) -> list[str]:
    """``names`` (test files relative to ``tests/``, in collection order) in the order they should start."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    return sorted(names, key=lambda name: rank.get(name, len(rank)))
