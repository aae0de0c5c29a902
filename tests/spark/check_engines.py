"""`make test-spark`: the demo data on DuckDB and on Spark, every contract mart compared.

Two batches, so incremental runs are compared too: the generated files
except the newest day's are loaded and built on both engines and compared;
then the newest day's files arrive, both engines run again (incrementally),
and the marts are compared again. Any difference fails (exit 1).

Run from the main virtualenv; Spark steps run in .venv-spark.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def step(title: str, command: list[str], env: dict[str, str]) -> None:
    print(f"\n== {title}\n$ {' '.join(command)}", flush=True)
    completed = subprocess.run(command, cwd=ROOT, env=env)
    if completed.returncode != 0:
        sys.exit(f"check failed at: {title} (exit {completed.returncode})")


EDGE_LINES = ROOT / "tests" / "fixtures" / "landing" / "edge_lines.jsonl"
# What the loader decides about a line (the rules of what is quarantined):
# which lines are rows, their numbers, which are unreadable and why.
LOADER_VERDICT = ("row_number", "raw_record", "parse_error")


def duckdb_raw_rows(landing: Path) -> list[dict]:
    """The DuckDB loader's raw rows of every landing file (nothing loaded)."""
    import duckdb

    from convo_warehouse.lib.landing import discover_files, file_format
    from convo_warehouse.lib.landing.load import READERS

    con = duckdb.connect()
    rows = []
    for path in discover_files(landing):
        READERS[file_format(path)].stage(con, path, None)
        cursor = con.execute("select * from _landing_rows")
        names = [column[0] for column in cursor.description]
        relative = path.relative_to(landing).as_posix()
        rows += [{"source_file": relative, **dict(zip(names, values, strict=True))} for values in cursor.fetchall()]
    return rows


def check_loaders_agree(spark_python: Path, work: Path, env: dict[str, str]) -> None:
    """Both loaders read the edge-case JSONL lines into the same verdicts."""
    import json

    landing = work / "edge-landing"
    landing.mkdir(parents=True)
    shutil.copy(EDGE_LINES, landing / EDGE_LINES.name)
    print(f"\n== the loaders' verdicts on {EDGE_LINES.relative_to(ROOT)}", flush=True)
    spark = subprocess.run(
        [str(spark_python), "-m", "convo_warehouse.spark", "raw-rows", "--landing", str(landing)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    if spark.returncode != 0:
        sys.exit(f"check failed at: Spark raw rows (exit {spark.returncode})\n{spark.stderr[-3000:]}")

    def verdicts(rows: list[dict]) -> list[tuple]:
        return sorted((tuple(row[name] for name in ("source_file", *LOADER_VERDICT)) for row in rows), key=repr)

    duck = verdicts(duckdb_raw_rows(landing))
    on_spark = verdicts([json.loads(line) for line in spark.stdout.splitlines() if line.startswith("{")])
    if duck != on_spark:
        differing = sorted(set(duck) ^ set(on_spark), key=repr)
        sys.exit("the loaders disagree (source_file, row_number, raw_record, parse_error):\n"
                 + "\n".join(f"  {'duckdb' if row in duck else 'spark '} {row}" for row in differing))
    print(f"both loaders: the same {len(duck)} rows and verdicts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=600)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "spark-check")
    args = parser.parse_args()

    main_bin = ROOT / ".venv" / "bin"
    spark_python = ROOT / ".venv-spark" / "bin" / "python"
    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    generated, landing = work / "generated", work / "landing"
    warehouse = work / "warehouse.duckdb"
    env = {
        **os.environ,
        "CONVO_SPARK_DIR": str(work / "spark"),
        "CONVO_DUCKDB_PATH": str(warehouse),
        "CONVO_LANDING_DIR": str(landing),
        "CONVO_CLASSIFIER": "rules",
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    Path(env["DAGSTER_HOME"]).mkdir(parents=True)
    check_loaders_agree(spark_python, work, env)
    step(
        "generate demo events",
        [str(main_bin / "convo-warehouse"), "generate", "--conversations", str(args.conversations),
         "--days", str(args.days), "--seed", "11", "--out", str(generated)],
        env,
    )
    # batch 1: every day folder but the newest; batch 2: the newest day and
    # the late events (older days corrected by the incremental run)
    entries = sorted(generated.iterdir())
    dated = [path for path in entries if path.is_dir() and path.name[:1].isdigit()]
    later = [dated[-1], *(path for path in entries if path.is_dir() and path not in dated)]
    batches = [[path for path in entries if path not in later], later]
    for number, batch in enumerate(batches, start=1):
        landing.mkdir(parents=True, exist_ok=True)
        for path in batch:
            shutil.move(str(path), landing / path.name)
        step(f"batch {number}: DuckDB pipeline", [str(main_bin / "convo-warehouse"), "run",
             "--landing", str(landing), "--warehouse", str(warehouse)], env)
        step(f"batch {number}: Spark pipeline", [str(spark_python), "-m", "convo_warehouse.spark", "run",
             "--landing", str(landing)], env)
        step(f"batch {number}: compare every contract mart", [str(spark_python), "-m",
             "convo_warehouse.spark", "compare", "--duckdb", str(warehouse)], env)
    print("\nDuckDB and Spark agree on every contract mart, after a full and an incremental batch.")


if __name__ == "__main__":
    main()
