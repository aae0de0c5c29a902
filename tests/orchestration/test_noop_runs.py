"""No-op runs: unchanged landing files are never re-read, and a run with
nothing new (files, project, seeds, vars, settings) is told it can skip.

These tests use the loader and ``lib/run_state.py`` directly (no dbt); the
Dagster job's skip is tested in test_orchestration.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from convo_warehouse.lib.landing import files as landing_files
from convo_warehouse.lib.landing import load_landing
from convo_warehouse.lib.run_state import (
    build_fingerprint,
    build_verdict,
    changed_landing_files,
    quick_verdict,
    record_run_complete,
    record_run_started,
)
from support.warehouse import open_warehouse

FINGERPRINT = "f" * 64


def write_events(path: Path, *event_ids: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"event_id": event_id, "conversation_id": "c1", "event_type": "user_message",
                    "timestamp": "2024-03-01T10:00:00Z"})
        for event_id in event_ids
    ]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def con(tmp_path):
    connection = open_warehouse(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()


@pytest.fixture()
def landing(tmp_path):
    folder = tmp_path / "landing"
    write_events(folder / "day1.jsonl", "e1", "e2")
    write_events(folder / "day2" / "part.jsonl", "e3")
    return folder


def complete_run(con, run_id: str, job: str = "build_all_job", fingerprint: str = FINGERPRINT) -> None:
    record_run_started(con, run_id, job, fingerprint)
    assert record_run_complete(con, run_id) == 1


def test_unchanged_files_are_neither_opened_nor_hashed(con, landing, monkeypatch):
    assert len(load_landing(con, landing, progress=False).files_loaded) == 2

    def fail(path):
        raise AssertionError(f"{path} was hashed although its size and mtime did not change")

    monkeypatch.setattr(landing_files, "content_hash", fail)
    report = load_landing(con, landing, progress=False)
    assert report.files_loaded == [] and len(report.files_skipped) == 2


def test_touched_file_is_hashed_once_and_not_loaded_again(con, landing, monkeypatch):
    load_landing(con, landing, progress=False)
    touched = landing / "day1.jsonl"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert changed_landing_files(con, landing) == ["day1.jsonl"]

    hashed = []
    original = landing_files.content_hash
    monkeypatch.setattr(landing_files, "content_hash", lambda path, *check: hashed.append(path.name) or original(path, *check))
    report = load_landing(con, landing, progress=False)
    # Same content: hashed (its mtime changed), skipped, and remembered.
    assert hashed == ["day1.jsonl"] and report.files_loaded == []
    assert changed_landing_files(con, landing) == []
    load_landing(con, landing, progress=False)
    assert hashed == ["day1.jsonl"]


def test_verdict_up_to_date_only_after_a_complete_run_of_the_same_inputs(con, landing):
    load_landing(con, landing, progress=False)
    assert not quick_verdict(con, landing, "build_all_job").up_to_date  # never built

    record_run_started(con, "run-1", "build_all_job", FINGERPRINT)
    assert not build_verdict(con, "build_all_job", FINGERPRINT).up_to_date  # started, not complete
    assert record_run_complete(con, "run-1") == 1
    verdict = build_verdict(con, "build_all_job", FINGERPRINT)
    assert verdict.up_to_date and "nothing built" in verdict.reason

    # Another fingerprint (a seed, var or setting changed): build.
    changed = build_verdict(con, "build_all_job", "0" * 64)
    assert not changed.up_to_date and "seed" in changed.reason


def test_new_file_or_new_load_means_work(con, landing):
    load_landing(con, landing, progress=False)
    complete_run(con, "run-1")
    write_events(landing / "day3.jsonl", "e4")
    verdict = quick_verdict(con, landing, "build_all_job")
    assert not verdict.up_to_date and "day3.jsonl" in verdict.reason

    # Loaded but not built yet (e.g. the build failed after the load).
    load_landing(con, landing, progress=False)
    assert changed_landing_files(con, landing) == []
    after_load = build_verdict(con, "build_all_job", FINGERPRINT)
    assert not after_load.up_to_date and "load runs 2..2" in after_load.reason


def test_full_job_covers_the_hourly_job_but_not_the_reverse(con, landing):
    load_landing(con, landing, progress=False)
    complete_run(con, "hourly-1", job="load_and_rebuild_job")
    assert not build_verdict(con, "build_all_job", FINGERPRINT).up_to_date
    complete_run(con, "daily-1", job="build_all_job")
    assert build_verdict(con, "load_and_rebuild_job", FINGERPRINT).up_to_date


def test_fingerprint_follows_seeds_vars_models_rules_and_settings(tmp_path):
    root = tmp_path / "project"
    for name in ("dbt_project.yml", "seeds/event_type_aliases.csv", "models/fct.sql", "macros/m.sql"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{name}\n")
    rules = tmp_path / "rules.yml"
    rules.write_text("stages: []\n")
    environ = {"CONVO_STAGE_RULES": str(rules)}
    base = build_fingerprint(root, environ)
    assert build_fingerprint(root, dict(environ)) == base  # stable

    seeds = root / "seeds" / "event_type_aliases.csv"
    seeds.write_text(seeds.read_text() + "chat_started,conversation_started\n")
    after_seed = build_fingerprint(root, environ)
    assert after_seed != base

    (root / "dbt_project.yml").write_text("vars:\n  abandon_after_minutes: 45\n")
    after_var = build_fingerprint(root, environ)
    assert after_var != after_seed

    rules.write_text("stages: [greeted]\n")
    after_rules = build_fingerprint(root, environ)
    assert after_rules != after_var

    assert build_fingerprint(root, {**environ, "CONVO_CLASSIFIER": "llm"}) != after_rules
    # Where the warehouse is, and secrets, are not settings of the build.
    assert build_fingerprint(root, {**environ, "CONVO_DUCKDB_PATH": "/x", "OPENAI_API_KEY": "k"}) == after_rules


def test_renamed_landing_folder_file_is_not_loaded_twice(con, landing):
    load_landing(con, landing, progress=False)
    shutil.move(landing / "day1.jsonl", landing / "renamed.jsonl")
    assert changed_landing_files(con, landing) == ["renamed.jsonl"]
    report = load_landing(con, landing, progress=False)
    assert report.files_loaded == [] and "renamed.jsonl" in report.files_skipped
    assert con.execute("select count(*) from raw.events").fetchone()[0] == 3


def test_fingerprint_reads_the_project_the_run_builds(tmp_path):
    """A run on a copy of the project (CONVO_DBT_PROJECT_DIR) is fingerprinted by that copy's
    seeds: an edited seed there is a change, not "nothing new"."""
    project = tmp_path / "project"
    (project / "seeds").mkdir(parents=True)
    (project / "seeds" / "experiments.csv").write_text("test_name,variant\nt,a\n")
    environ = {"CONVO_DBT_PROJECT_DIR": str(project)}
    before = build_fingerprint(environ=environ)
    (project / "seeds" / "experiments.csv").write_text("test_name,variant\nt,b\n")
    assert build_fingerprint(environ=environ) != before
    assert build_fingerprint(environ={}) == build_fingerprint(environ={})
