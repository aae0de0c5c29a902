"""DuckDB next to Spark local mode: the full build of the same generated events.

`make bench-spark` (EVENTS=1000000 by default). Generates JSONL events, then
builds them from empty on each engine as a child process:

- DuckDB: ``convo-warehouse run`` (the Dagster job: loader, dbt build with data
  tests, rules classifier, GX suites, serving snapshot);
- Spark: ``python -m convo_warehouse.spark run`` in .venv-spark (the Spark loader,
  dbt build on the ``spark`` target with data tests, rules classifier, Python
  models in the session).

Prints wall time and the peak resident memory of each process tree (the sum
over its processes, sampled every 0.2 s: Spark's JVM is a child of Python),
and writes them to benchmarks/results/spark.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = REPO_ROOT / ".venv" / "bin"
SPARK_PYTHON = REPO_ROOT / ".venv-spark" / "bin" / "python"
sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import EVENTS_PER_CONVERSATION  # noqa: E402  (one measured ratio)

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


def timed_tree(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run a child process; return (seconds, peak RSS of its process tree in MiB)."""
    peak = 0
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_bytes(process.pid))
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        done.set()
        sampler.join()
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed (exit {code}); see {log}")
    return seconds, peak / 2**20


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
    subprocess.run(
        [str(BIN / "convo-warehouse"), "generate", "-n", str(conversations), "--days", str(args.days),
         "--seed", str(args.seed), "--format-mix", "jsonl=1", "--out", str(landing), "-q"],
        cwd=REPO_ROOT, env=env, check=True,
    )
    subprocess.run([str(BIN / "python"), "-c", "from convo_warehouse.project import ensure_manifest; "
                    "ensure_manifest()"], cwd=REPO_ROOT, env=env, check=True)

    print("DuckDB full build (convo-warehouse run) ...", flush=True)
    duck = timed_tree([str(BIN / "convo-warehouse"), "run", "--quiet"], env, work / "duckdb.log")
    events = int(subprocess.run([str(BIN / "python"), "-c", COUNT_SCRIPT, str(warehouse)],
                                capture_output=True, text=True, check=True).stdout)
    print("Spark local-mode full build (python -m convo_warehouse.spark run) ...", flush=True)
    spark = timed_tree([str(SPARK_PYTHON), "-m", "convo_warehouse.spark", "run", "--landing", str(landing)],
                       env, work / "spark.log")

    rows = [("DuckDB", *duck), ("Spark local[2]", *spark)]
    print(f"\n{events:,} raw events, {conversations:,} conversations")
    print(f"{'engine':<16} {'wall s':>9} {'peak MiB':>9}")
    for name, seconds, rss in rows:
        print(f"{name:<16} {seconds:>9.1f} {rss:>9,.0f}")
    result = {
        "raw_events": events,
        "conversations": conversations,
        "days": args.days,
        "full_build": {name: {"seconds": round(seconds, 1), "peak_rss_mib": round(rss)}
                       for name, seconds, rss in rows},
    }
    (REPO_ROOT / "benchmarks" / "results" / "spark.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
