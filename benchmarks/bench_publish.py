"""Benchmark: publishing one new day's snapshot against publishing a full build's, in one run.

On a copy of a built warehouse (``--warehouse``, never written to; or one
built here from ``--events`` generated events with ``convo-warehouse run``):

1. **the marts as the pipeline built them**: ``audit.partitions_rewritten``
   records a whole rewrite of every served table with a day column (its own,
   or the day of a timestamp such as ``fct_messages.message_at``:
   ``serving.DAY_COLUMNS``), as a full build would (tables without one, the
   small aggregates among them, get no rows there and are compared by
   content);
2. **full publish**: ``lib.serving.publish`` into an empty serving folder;
3. **one new day**: in every served table with a day column, the rows of a
   full day (the newest with at least the median conversations) are copied to
   the day after the newest, and that day is recorded in
   ``audit.partitions_rewritten``; then ``publish`` again;
4. **one new day, no history**: the same with another day and without
   ``audit.partitions_rewritten``, so every table is compared by content.

Steps 2-4 run ``--repeat`` times (each in a fresh serving folder); we report
the median wall time of ``publish`` of each, the median of each run's ratio
to its full publish, and what each version wrote, linked and reused.

    .venv/bin/python benchmarks/bench_publish.py --warehouse /path/to/warehouse.duckdb
    .venv/bin/python benchmarks/bench_publish.py --events 2000000
    make bench-publish WAREHOUSE=/path/to/warehouse.duckdb   (or EVENTS=2000000)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EVENTS_PER_CONVERSATION = 12.4  # measured on the generator's output
DAYS = 30


def build_warehouse(work: Path, events: int, seed: int) -> Path:
    """Generate ``events`` events over 30 days and build a warehouse with ``convo-warehouse run``."""
    landing, warehouse = work / "landing", work / "built.duckdb"
    conversations = max(1, int(events / EVENTS_PER_CONVERSATION))
    print(f"generating ~{events:,} events ({conversations:,} conversations over {DAYS} days) ...", flush=True)
    subprocess.run(
        [str(BIN / "convo-warehouse"), "generate", "-n", str(conversations), "--days", str(DAYS), "--seed", str(seed),
         "--format-mix", "jsonl=1", "--out", str(landing), "-q"],
        check=True,
    )
    (work / "dagster_home").mkdir(exist_ok=True)
    (work / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "CONVO_DUCKDB_PATH": str(warehouse),
        "CONVO_LANDING_DIR": str(landing),
        "CONVO_SERVING_DIR": str(work / "built-serving"),
        "CONVO_CLASSIFIER": "rules",
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(work / "dagster_home"),
    }
    print("building the warehouse (convo-warehouse run) ...", flush=True)
    subprocess.run([str(BIN / "convo-warehouse"), "run", "--quiet"], env=env, check=True)
    return warehouse


def columns_of(con, table: str) -> list[tuple[str, str]]:
    schema, name = table.split(".")
    return [tuple(row) for row in con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()]


def day_tables(con, serving) -> dict[str, object]:
    """Served tables that have a day column, with it."""
    return {table.name: table.day for table in serving.served_tables(con) if table.day is not None}


def record_rewrites(con, tables: list[str], day: dt.date | None) -> None:
    """Note in audit.partitions_rewritten what a build rewrote: ``day`` of each table, or all of it (None)."""
    con.execute(
        "create table if not exists audit.partitions_rewritten "
        "(relation_name varchar, partition_date date, rewrote_all boolean, recorded_at timestamp)"
    )
    recorded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.executemany(
        "insert into audit.partitions_rewritten values (?, ?, ?, ?)",
        [(table, day, day is None, recorded_at) for table in tables],
    )


def busy_day(con) -> dt.date:
    """The newest day with at least the median number of conversations: a full day's worth of data."""
    return con.execute(
        """
        with days as (
            select conversation_date, count(*) as conversations
            from marts.fct_conversations
            group by conversation_date
        )
        select max(conversation_date)
        from days
        where conversations >= (select median(conversations) from days)
        """
    ).fetchone()[0]


def add_day(con, tables: dict[str, object], source_day: dt.date, day: dt.date) -> dict[str, int]:
    """Copy the rows of ``source_day`` to ``day`` in each table: one new day of data. Returns rows added per table.

    Every date and timestamp moves by the same number of days (so an hour stays within its day,
    as the marts' constraints require); identifiers (``*_id`` text columns) get the day appended,
    so the copies keep keys unique.
    """
    added: dict[str, int] = {}
    shift = (day - source_day).days
    for table, day_column in tables.items():
        source = day_column.source

        def value(column: str, data_type: str) -> str:
            if column == source or data_type == "DATE" or data_type.startswith("TIMESTAMP"):
                return f'"{column}" + interval {shift} day'
            if column.endswith("_id") and data_type == "VARCHAR":
                return f"\"{column}\" || '-{day.isoformat()}'"
            return f'"{column}"'

        values = ", ".join(value(column, data_type) for column, data_type in columns_of(con, table))
        before = con.execute(f"select count(*) from {table}").fetchone()[0]
        con.execute(f'insert into {table} select {values} from {table} where cast("{source}" as date) = ?', [source_day])
        added[table] = con.execute(f"select count(*) from {table}").fetchone()[0] - before
    return added


def newest_day(con, tables: dict[str, object]) -> dt.date:
    """The latest day any tracked table holds (an empty table, such as interventions at scale, has none)."""
    days = (
        con.execute(f'select max(cast("{day.source}" as date)) from {table}').fetchone()[0]
        for table, day in tables.items()
    )
    return max(day for day in days if day is not None)


def timed_publish(con, serving, serving_dir: Path, run_id: str) -> tuple[float, dict]:
    """Publish from a quiet start (the warehouse checkpointed, dirty pages flushed); seconds and what it wrote."""
    con.execute("checkpoint")
    os.sync()
    started = time.perf_counter()
    result = serving.publish(con, serving_dir, run_id=run_id, tests={"status": "passed"}, keep=5)
    seconds = time.perf_counter() - started
    return seconds, summary(result)


def summary(result) -> dict:
    """What the new version changed, its size and the bytes it did not share with the one before (written now)."""
    changes = result.snapshot.manifest["changes"]
    counted: dict[str, int] = {}
    for change in changes["tables"].values():
        counted[change["change"]] = counted.get(change["change"], 0) + 1
    folder = result.snapshot.folder
    # every file a reader of the version sees, through its links to the store's day folders
    files = [Path(root) / name for root, _, names in os.walk(folder, followlinks=True) for name in names]
    # written now: the version's own files that are no hard link, and its partitions in the store
    written = [path for path in folder.rglob("*") if path.is_file() and not path.is_symlink() and path.stat().st_nlink == 1]
    written += list((folder.parent.parent / "partitions").glob(f"*/{result.snapshot.version}/*/*"))
    return {
        "tables": counted,
        "read_through_views": sorted(
            table for table, entry in result.snapshot.tables.items() if entry["storage"] == "parquet"
        ),
        "files": changes["files"],
        "partitions_rewritten": {
            table: change["partitions_rewritten"]
            for table, change in changes["tables"].items()
            if change.get("partitions_rewritten")
        },
        "snapshot_bytes": sum(path.stat().st_size for path in files),
        "bytes_written": sum(path.stat().st_size for path in written),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, help="a built warehouse to copy (never written to)")
    parser.add_argument("--events", type=int, default=2_000_000, help="without --warehouse: events to generate and build")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="measure each publish this many times (median)")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "publish-work")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO_ROOT / "orchestration"))
    from convo_warehouse.lib import serving
    from convo_warehouse.lib.warehouse import connect

    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = args.warehouse.resolve() if args.warehouse else build_warehouse(work, args.events, args.seed)
    warehouse = work / "warehouse.duckdb"
    print(f"copying {source} ...", flush=True)
    shutil.copyfile(source, warehouse)

    con = connect(warehouse)
    events = con.execute("select count(*) from staging.stg_events").fetchone()[0]
    con.execute("drop table if exists audit.partitions_rewritten")
    tables = day_tables(con, serving)
    # The incremental builds (replace_touched) record every table with a day column;
    # the ones without (small aggregates, ab_test_exposures, top_paths) are compared by content.
    tracked = sorted(tables)
    source_day = busy_day(con)
    con.execute("checkpoint")

    full, day, blind = [], [], []
    for attempt in range(args.repeat):
        serving_dir = work / f"serving-{attempt}"
        record_rewrites(con, tracked, None)  # the full build rewrote every table it tracks
        seconds, first = timed_publish(con, serving, serving_dir, "full")
        full.append(seconds)
        next_day = newest_day(con, tables) + dt.timedelta(days=1)
        rows_added = add_day(con, tables, source_day, next_day)
        record_rewrites(con, tracked, next_day)
        seconds, second = timed_publish(con, serving, serving_dir, "one new day")
        day.append(seconds)
        # a table with no rows on the copied day (interventions, alerts at scale) gets none
        rewritten = {table: second["partitions_rewritten"].get(table) for table in tracked if rows_added[table]}
        if any(keys != [next_day.isoformat()] for keys in rewritten.values()):
            raise SystemExit(f"one new day rewrote other partitions than {next_day}: {rewritten}")
        # The same once more with no history: every table compared by content.
        con.execute("drop table audit.partitions_rewritten")
        blind_day = next_day + dt.timedelta(days=1)
        add_day(con, tables, source_day, blind_day)
        seconds, third = timed_publish(con, serving, serving_dir, "one new day, no history")
        blind.append(seconds)
        print(f"  run {attempt + 1}: full {full[-1]:.2f} s, one new day {day[-1]:.2f} s, "
              f"without history {blind[-1]:.2f} s", flush=True)
    con.close()

    full_s, day_s, blind_s = (statistics.median(values) for values in (full, day, blind))
    # Each run's own ratio (its two publishes ran minutes apart), then their median: steadier on a busy machine.
    day_share = statistics.median(one / whole for one, whole in zip(day, full, strict=True))
    blind_share = statistics.median(one / whole for one, whole in zip(blind, full, strict=True))
    result = {
        "warehouse": str(source),
        "raw_events": events,
        "tracked_tables": tracked,
        "rows_in_one_new_day": sum(rows_added.values()),
        "serving_parquet_rows": serving.parquet_rows(),
        "repeat": args.repeat,
        "full_publish_seconds": round(full_s, 2),
        "one_new_day_seconds": round(day_s, 2),
        "one_new_day_without_history_seconds": round(blind_s, 2),
        "one_new_day_share_of_full": round(day_share, 3),
        "without_history_share_of_full": round(blind_share, 3),
        "all_seconds": {"full": full, "one_new_day": day, "without_history": blind},
        "full_publish": first,
        "one_new_day": second,
        "one_new_day_without_history": third,
    }
    print()
    print(f"raw events: {events:,}; tables with a day column (partitioned, recorded): {', '.join(tracked)}")
    print(f"read through views (CONVO_SERVING_PARQUET_ROWS={serving.parquet_rows():,}): "
          f"{', '.join(first['read_through_views'])}")
    print(f"{'publish (median of runs)':<32} {'seconds':>8} {'share of full':>14}")
    for name, seconds, share in (
        ("full build", full_s, 1.0), ("one new day", day_s, day_share), ("one new day, no history", blind_s, blind_share)
    ):
        print(f"{name:<32} {seconds:>8.2f} {share:>14.1%}")
    print("(share: the median of each run's own ratio)")
    for name in ("full_publish", "one_new_day", "one_new_day_without_history"):
        shown = {key: value for key, value in result[name].items()
                 if key not in ("partitions_rewritten", "read_through_views")}
        print(f"  {name}: {shown}")
    results_dir = REPO_ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"publish_{events}.json").write_text(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
