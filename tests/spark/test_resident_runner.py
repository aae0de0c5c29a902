"""`python -m convo_warehouse.spark run --every SECONDS`: one process, one Spark JVM, a run each
time the landing folder or the project changed (``run_spark_pipeline_every``). The pipeline
itself is replaced by a recorder here; `make bench-spark` runs the real one this way."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from convo_warehouse.spark.__main__ import main
from convo_warehouse.lib.resident import RESIDENT_FAILURES_LIMIT
from convo_warehouse.spark.pipeline import (
    SparkPipelineError,
    _StepClock,
    run_spark_pipeline_every,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_spark  # noqa: E402

CHECK_SECONDS = 0.05
WAIT_SECONDS = 30


class Recorder:
    """A stand-in pipeline run: records the landing files each call saw; ``fail`` calls raise."""

    def __init__(self, fail: int = 0) -> None:
        self.seen: list[list[str]] = []
        self.fail = fail

    def __call__(self, landing: Path, progress: bool) -> str:
        self.seen.append(sorted(path.name for path in landing.rglob("*.jsonl")))
        if len(self.seen) <= self.fail:
            raise RuntimeError(f"step failed in call {len(self.seen)}")
        return f"run {len(self.seen)}"

    def wait_for(self, calls: int) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.seen) < calls:
            assert time.monotonic() < deadline, f"{len(self.seen)} runs after {WAIT_SECONDS} s, expected {calls}"
            time.sleep(CHECK_SECONDS)


def started(landing: Path, recorder: Recorder) -> tuple[threading.Thread, threading.Event, list]:
    stop, errors = threading.Event(), []

    def target() -> None:
        try:
            run_spark_pipeline_every(landing, CHECK_SECONDS, stop, progress=False, run=recorder)
        except Exception as error:  # handed to the test thread
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, stop, errors


def test_a_run_starts_when_a_landing_file_arrives_or_changes_and_never_without_one(tmp_path):
    landing = tmp_path / "landing"
    (landing / "day1").mkdir(parents=True)
    (landing / "day1" / "a.jsonl").write_text('{"event_id": "1"}\n')
    recorder = Recorder()
    thread, stop, errors = started(landing, recorder)

    recorder.wait_for(1)
    time.sleep(CHECK_SECONDS * 10)  # ten checks with nothing new
    assert recorder.seen == [["a.jsonl"]]

    (landing / "day1" / "b.jsonl").write_text('{"event_id": "2"}\n')
    recorder.wait_for(2)
    with (landing / "day1" / "a.jsonl").open("a") as handle:  # a file that grew is read again
        handle.write('{"event_id": "3"}\n')
    recorder.wait_for(3)
    time.sleep(CHECK_SECONDS * 10)
    stop.set()
    thread.join(WAIT_SECONDS)

    assert not thread.is_alive() and not errors
    assert recorder.seen == [["a.jsonl"], ["a.jsonl", "b.jsonl"], ["a.jsonl", "b.jsonl"]]


def test_a_failed_run_is_tried_again_and_failures_in_a_row_stop_the_runner(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.jsonl").write_text('{"event_id": "1"}\n')

    # one failure: the next check runs again without new data, then nothing more runs
    recorder = Recorder(fail=1)
    thread, stop, errors = started(landing, recorder)
    recorder.wait_for(2)
    time.sleep(CHECK_SECONDS * 10)
    stop.set()
    thread.join(WAIT_SECONDS)
    assert len(recorder.seen) == 2 and not errors

    # every run fails: the runner gives up after the limit, with the last error
    recorder = Recorder(fail=10**6)
    with pytest.raises(SparkPipelineError, match=f"{RESIDENT_FAILURES_LIMIT} runs in a row failed.*call 3"):
        run_spark_pipeline_every(landing, CHECK_SECONDS, threading.Event(), progress=False, run=recorder)
    assert len(recorder.seen) == RESIDENT_FAILURES_LIMIT


def test_the_stop_waits_for_the_run_in_progress(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    stop, finished = threading.Event(), []

    def run(landing: Path, progress: bool) -> str:
        stop.set()  # as SIGTERM during a run: the run still ends, and no other starts
        time.sleep(CHECK_SECONDS * 4)
        finished.append(True)
        (landing / "new.jsonl").write_text("{}\n")
        return "done"

    run_spark_pipeline_every(landing, CHECK_SECONDS, stop, progress=False, run=run)
    assert finished == [True]


def test_every_is_documented_and_refuses_a_period_under_a_second():
    runner = CliRunner()
    assert "--every SECONDS" in runner.invoke(main, ["run", "--help"]).output
    refused = runner.invoke(main, ["run", "--every", "0.5"])
    assert refused.exit_code == 2 and "0.5 is not in the range x>=1" in refused.output


def test_the_bench_reads_a_runs_end_as_the_run_prints_it(capsys):
    clock = _StepClock(progress=True)
    clock.lap("load")
    clock.finished()
    printed = capsys.readouterr().out
    assert [float(seconds) >= 0 for seconds in bench_spark.RUN_FINISHED.findall(printed)] == [True]
    assert not bench_spark.RUN_FINISHED.findall(printed.replace("finished in", "took"))
