"""DuckDB next to Spark local mode: a full build and an hour batch on that history.

`make bench-spark` (EVENTS=1000000 by default). Generates JSONL events (30
days ending END_DATE, as `make bench`), then, each engine as a child
process, one after the other:

1. **full build** from empty: DuckDB through ``convo-warehouse run`` (the
   Dagster job: loader, dbt build with data tests, rules classifier, GX
   suites, serving snapshot); Spark through ``python -m convo_warehouse.spark
   run`` in .venv-spark (the Spark loader, dbt on the ``spark`` target with
   data tests, rules classifier, Python models in the session, the run
   recorded in the ledgers);
2. **one hour**: `make bench`'s fixed batch (about 10,000 events of the day
   after the history) landed and run again: an incremental run on both
   engines. On Spark by ``python -m convo_warehouse.spark run --every``, a
   resident process whose first run is this hour, in a new JVM as before;
3. **the next hour**, Spark only: another batch of the same size and day
   (other conversations) landed while that process waits, and run by it on
   the JVM the hour warmed, as an hourly schedule's every run after its
   first.

Prints wall time and the peak resident memory of each process tree (the sum
over its processes, sampled every 0.2 s: Spark's JVM is a child of Python),
the hour as a share of the full build on each engine, and the partitions the
hour rewrote on Spark (from the table files: those whose files changed),
against the days it touched. Writes benchmarks/results/spark.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = REPO_ROOT / ".venv" / "bin"
SPARK_PYTHON = REPO_ROOT / ".venv-spark" / "bin" / "python"
sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import (  # noqa: E402  (the history and hour batch of make bench)
    END_DATE,
    EVENTS_PER_CONVERSATION,
    HOUR_CONVERSATIONS,
    HOUR_DATE,
    HOUR_SEED,
)

sys.path.insert(0, str(REPO_ROOT / "orchestration"))
from convo_warehouse.spark.compare import partition_files, partitions_rewritten  # noqa: E402

COUNT_SCRIPT = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("select count(*) from raw.events").fetchone()[0])
"""


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class SampledChild:
    """A child process with its output in ``log`` and the peak RSS of its process tree sampled
    every 0.2 s (``take_peak()``: the peak since the last call, in MiB)."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command, self.log, self._peak = command, log, 0
        self._output = log.open("w")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=self._output,
                                        stderr=subprocess.STDOUT)
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            self._peak = max(self._peak, _tree_rss_bytes(self.process.pid))
            self._done.wait(0.2)

    def take_peak(self) -> float:
        peak, self._peak = self._peak, 0
        return peak / 2**20

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout)
        self._done.set()
        self._sampler.join()
        self._output.close()
        return code


def timed_tree(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run a child process; return (seconds, peak RSS of its process tree in MiB)."""
    child = SampledChild(command, env, log)
    code = child.wait()
    seconds = time.perf_counter() - child.started
    if code != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed (exit {code}); see {log}")
    return seconds, child.take_peak()


# a resident run's end, as `python -m convo_warehouse.spark run` prints it
RUN_FINISHED = re.compile(r"^spark run: finished in ([\d.]+) s$", re.MULTILINE)


class ResidentRunner(SampledChild):
    """``spark run --every`` as a child process. ``run_ended(n)`` waits for its run number ``n``
    (from 0) to end and gives (seconds, peak RSS of its process tree in MiB since the last call):
    run 0 timed from the process's start (its JVM's start included, as ``timed_tree``), later
    runs by their own clock (the wait before a run started is not the run's)."""

    def run_ended(self, number: int) -> tuple[float, float]:
        while True:
            ends = [float(seconds) for seconds in RUN_FINISHED.findall(self.log.read_text())]
            if len(ends) > number:
                seconds = time.perf_counter() - self.started if number == 0 else ends[number]
                return seconds, self.take_peak()
            if self.process.poll() is not None:
                raise SystemExit(f"spark run --every exited ({self.process.returncode}); see {self.log}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        code = self.wait(600)
        if code != 0:
            raise SystemExit(f"spark run --every ended with exit {code}; see {self.log}")


def scope_days(spark_dir: Path) -> list[str]:
    """The days Spark's last run touched (its ``scope_days`` table's files)."""
    import duckdb

    return sorted(
        str(row[0]) for row in duckdb.connect().execute(
            "select event_date from read_parquet(?)",
            [str(spark_dir / "warehouse" / "scope.db" / "scope_days" / "*.parquet")],
        ).fetchall()
    )


def generate(env: dict[str, str], out: Path, conversations: int, days: int, seed: int, end_date: str) -> None:
    subprocess.run(
        [str(BIN / "convo-warehouse"), "generate", "-n", str(conversations), "--days", str(days),
         "--seed", str(seed), "--end-date", end_date, "--format-mix", "jsonl=1", "--out", str(out), "-q"],
        cwd=REPO_ROOT, env=env, check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="approximate raw events to generate")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "spark-work")
    args = parser.parse_args()

    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    landing, warehouse = work / "landing", work / "warehouse.duckdb"
    (work / "dagster_home").mkdir(parents=True)
    (work / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "CONVO_DUCKDB_PATH": str(warehouse),
        "CONVO_LANDING_DIR": str(landing),
        "CONVO_SPARK_DIR": str(work / "spark"),
        "CONVO_CLASSIFIER": "rules",
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    conversations = max(1, int(args.events / EVENTS_PER_CONVERSATION))
    print(f"generating ~{args.events:,} events ({conversations:,} conversations, {args.days} days, JSONL) ...",
          flush=True)
    generate(env, landing / "history", conversations, args.days, args.seed, END_DATE)
    subprocess.run([str(BIN / "python"), "-c", "from convo_warehouse.project import ensure_manifest; "
                    "ensure_manifest()"], cwd=REPO_ROOT, env=env, check=True)
    duck_command = [str(BIN / "convo-warehouse"), "run", "--quiet"]
    spark_command = [str(SPARK_PYTHON), "-m", "convo_warehouse.spark", "run", "--landing", str(landing)]

    print("DuckDB full build (convo-warehouse run) ...", flush=True)
    duck_full = timed_tree(duck_command, env, work / "duckdb-full.log")
    events = int(subprocess.run([str(BIN / "python"), "-c", COUNT_SCRIPT, str(warehouse)],
                                capture_output=True, text=True, check=True).stdout)
    print("Spark local-mode full build (python -m convo_warehouse.spark run) ...", flush=True)
    spark_full = timed_tree(spark_command, env, work / "spark-full.log")

    generate(env, landing / "hour", HOUR_CONVERSATIONS, 1, HOUR_SEED, HOUR_DATE)
    hour_lines = sum(1 for path in (landing / "hour").rglob("*.jsonl") for _ in path.open())
    print(f"DuckDB one hour ({hour_lines:,} lines) ...", flush=True)
    duck_hour = timed_tree(duck_command, env, work / "duckdb-hour.log")
    before = partition_files(work / "spark")
    print(f"Spark one hour ({hour_lines:,} lines; python -m convo_warehouse.spark run --every) ...", flush=True)
    resident = ResidentRunner([*spark_command, "--every", "2"], env, work / "spark-hours.log")
    spark_hour = resident.run_ended(0)
    rewritten = partitions_rewritten(before, partition_files(work / "spark"))
    partitions_after = len(partition_files(work / "spark"))
    days_touched = scope_days(work / "spark")
    # generated aside and moved in whole: the waiting process never sees a half-written file
    generate(env, work / "next-hour", HOUR_CONVERSATIONS, 1, HOUR_SEED + 1, HOUR_DATE)
    next_lines = sum(1 for path in (work / "next-hour").rglob("*.jsonl") for _ in path.open())
    print(f"Spark the next hour ({next_lines:,} lines) in the same process ...", flush=True)
    (work / "next-hour").rename(landing / "next-hour")
    spark_next_hour = resident.run_ended(1)
    resident.stop()
    next_days = scope_days(work / "spark")
    # the day-partitioned tables' (base_events_parsed's partitions are load runs, the ledger's runs)
    rewritten_days = sorted({value for table, values in rewritten.items()
                             if table != "staging.base_events_parsed" and not table.startswith("audit.")
                             for value in values})

    rows = [("DuckDB", *duck_full, *duck_hour), ("Spark local[2]", *spark_full, *spark_hour)]
    print(f"\n{events:,} raw events, {conversations:,} conversations; hour batch {hour_lines:,} lines, "
          f"next hour {next_lines:,}")
    print(f"{'engine':<16} {'full s':>9} {'peak MiB':>9} {'hour s':>9} {'peak MiB':>9} {'hour/full':>10}")
    for name, full_s, full_rss, hour_s, hour_rss in rows:
        print(f"{name:<16} {full_s:>9.1f} {full_rss:>9,.0f} {hour_s:>9.1f} {hour_rss:>9,.0f} "
              f"{hour_s / full_s:>10.1%}")
    print(f"{'Spark next hour':<16} {'':>9} {'':>9} {spark_next_hour[0]:>9.1f} {spark_next_hour[1]:>9,.0f} "
          f"{spark_next_hour[0] / spark_full[0]:>10.1%}  (the same process, its JVM warm; "
          f"{len(next_days)} days touched)")
    print(f"Spark's hour rewrote {sum(len(values) for values in rewritten.values())} of {partitions_after} "
          f"partitions, days {', '.join(rewritten_days)}; the days it touched (scope_days): "
          f"{', '.join(days_touched)}")
    result = {
        "raw_events": events,
        "conversations": conversations,
        "days": args.days,
        "hour_batch_lines": hour_lines,
        "engines": {
            name: {
                "full_build_seconds": round(full_s, 1),
                "full_build_peak_rss_mib": round(full_rss),
                "hour_seconds": round(hour_s, 1),
                "hour_peak_rss_mib": round(hour_rss),
                "hour_share_of_full_build": round(hour_s / full_s, 3),
            }
            for name, full_s, full_rss, hour_s, hour_rss in rows
        },
        "spark_next_hour": {
            "lines": next_lines,
            "seconds": round(spark_next_hour[0], 1),
            "peak_rss_mib": round(spark_next_hour[1]),
            "share_of_full_build": round(spark_next_hour[0] / spark_full[0], 3),
            "days_touched": next_days,
        },
        "spark_hour_partitions_rewritten": {table: sorted(values) for table, values in rewritten.items() if values},
        "spark_partitions_after_hour": partitions_after,
        "spark_hour_days_touched": days_touched,
    }
    (REPO_ROOT / "benchmarks" / "results" / "spark.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
