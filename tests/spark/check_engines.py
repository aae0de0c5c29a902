"""`make test-spark`: the demo data on DuckDB and on Spark, every contract mart compared.

Two batches, so incremental runs are compared too: the generated files
except the newest day's are loaded and built on both engines and compared;
then the newest day's files arrive, both engines run again (incrementally),
and the marts are compared again. Any difference fails (exit 1). In each
batch DuckDB's run goes beside Spark's job (its output printed when it ends).

Each engine runs the whole Dagster job (`convo-warehouse run`; on Spark with
CONVO_TARGET=spark: the Spark loader, dbt on the spark target, the
classifier and the Python models as Spark steps, the run recorded last).
On Spark one Spark server on 127.0.0.1 (`python -m convo_warehouse.spark
serve`) runs for both batches, as a cluster's would, and each batch's job
reaches it (CONVO_SPARK_THRIFT=running): every dbt step and the run's
record through its Thrift service (dbt's `method: thrift`, the output a
cluster user copies), the loader, the classifier and the Python models
through its Spark Connect service (CONVO_SPARK_CONNECT). The server's log
must show one start before batch 1, and for each batch no start, the
statements it ran through Thrift and the operations Spark Connect clients
sent. The second batch runs on the first's warm JVM. The incremental batch must
rewrite on Spark exactly the partitions of the days it touched (the days of DuckDB's scope_days for that run) in every
day-partitioned table, found from the table files themselves, not from
what the run says it did; and a conversation alone on its day, moved to
the day before by a late event, must leave no partition behind.

Run from the main virtualenv; Spark steps run in .venv-spark.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "orchestration"))
from convo_warehouse.spark.compare import partition_files, partitions_rewritten  # noqa: E402
from convo_warehouse.spark.thrift import free_port  # noqa: E402


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


# For a JVM that lives for a few hundred statements on little data: C2 would
# spend more CPU compiling Spark's planner than its code saves; the first tier
# alone needs its own code cache (its default is 48 MB). Its heap holds little
# that lives: one serial collector costs less CPU than G1's threads on two cores.
SMALL_DATA_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m -XX:+UseSerialGC"


# Run in .venv-spark: the local file system Spark is configured with sets the
# permission bits Hadoop asks for, by itself (no chmod process), and leaves
# the bits java.nio cannot set to Hadoop's chmod.
LOCAL_FS_CHECK = """
import os, shutil, stat, sys, tempfile
from pyspark.java_gateway import launch_gateway
from convo_warehouse.spark.session import spark_settings
jvm = launch_gateway().jvm
conf = jvm.org.apache.hadoop.conf.Configuration()
for key, value in spark_settings().items():
    if key.startswith("spark.hadoop."):
        conf.set(key[len("spark.hadoop."):], value)
fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(conf)
folder = tempfile.mkdtemp()
path = os.path.join(folder, "f")
open(path, "w").close()
def mode_after(permission):
    fs.setPermission(jvm.org.apache.hadoop.fs.Path(path), jvm.org.apache.hadoop.fs.permission.FsPermission(permission))
    return oct(stat.S_IMODE(os.stat(path).st_mode))
try:
    print(fs.getClass().getName(), mode_after(0o640), mode_after(0o1751), mode_after(0o604))
finally:
    shutil.rmtree(folder)
"""


def check_local_file_system(spark_python: Path, env: dict[str, str]) -> None:
    """Spark's file: scheme is the project's file system, and it sets what chmod would."""
    print("\n== Spark's local file system", flush=True)
    completed = subprocess.run([str(spark_python), "-c", LOCAL_FS_CHECK], cwd=ROOT, env=env,
                               capture_output=True, text=True)
    expected = "org.convowarehouse.hadoop.NioLocalFileSystem 0o640 0o1751 0o604"
    answer = completed.stdout.strip().splitlines()[-1:] or [completed.stderr[-2000:]]
    if completed.returncode != 0 or answer[0] != expected:
        sys.exit(f"Spark's local file system: expected {expected!r}, got {answer[0]!r}\n"
                 "(the jar is built by the Makefile's .venv-spark step: make spark-venv)")
    print(f"{expected.split()[0]}: modes set as asked (0640, 1751 through chmod, 0604)")


# A conversation alone on its day (days before the generated ones) in batch
# 1; in batch 2 a late event a day earlier becomes its first: its old day
# must then hold no row anywhere (on Spark: its partitions dropped).
LONELY_DAY = "2026-01-10"
LONELY_EARLIER_DAY = "2026-01-09"
LONELY_BATCH_1 = [
    {"event_id": "e-lonely-1", "event_type": "conversation_started", "timestamp": f"{LONELY_DAY}T10:00:00Z",
     "channel": "web", "properties": {"agent_id": "support-ava", "environment": "production"}},
    {"event_id": "e-lonely-2", "event_type": "message_received", "timestamp": f"{LONELY_DAY}T10:00:05Z",
     "channel": "web", "properties": {"sender": "user", "content": "where is my order?", "turn": 1}},
    {"event_id": "e-lonely-3", "event_type": "agent_message", "timestamp": f"{LONELY_DAY}T10:00:09Z",
     "channel": "web", "properties": {"content": "Let me check that for you.", "turn": 1}},
]
LONELY_BATCH_2 = [
    {"event_id": "e-lonely-0", "event_type": "conversation_started",
     "timestamp": f"{LONELY_EARLIER_DAY}T23:50:00Z", "channel": "web",
     "properties": {"agent_id": "support-ava", "environment": "production"}},
]


def write_lonely_conversation(folder: Path, events: list[dict]) -> None:
    import json

    folder.mkdir(parents=True)
    with (folder / "events_lonely.jsonl").open("w") as out:
        for event in events:
            out.write(json.dumps({"conversation_id": "c-lonely", "user_id": "u-lonely", **event}) + "\n")


def check_partitions_rewritten(before: dict, after: dict, warehouse: Path, spark_dir: Path) -> None:
    """Spark's incremental batch rewrote, in each day-partitioned table, exactly the partitions of
    the days the batch touched: DuckDB's scope_days of the same run. A partition whose files
    changed or that was dropped was rewritten; the others' files are untouched."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    touched = {str(row[0]) for row in con.execute("select event_date from scope.scope_days").fetchall()}
    con.close()
    recorded = {
        str(row[0]) for row in duckdb.connect().execute(
            "select partition_date from read_parquet(?) where not rewrote_all and recorded_at = "
            "(select max(recorded_at) from read_parquet(?))",
            [str(spark_dir / "warehouse" / "audit.db" / "partitions_rewritten" / "**" / "*.parquet")] * 2,
        ).fetchall()
    }
    changed = partitions_rewritten(before, after)
    tables = sorted(table for table in changed if not table.startswith("audit."))
    problems, rewritten_total, partitions_total, days = [], 0, 0, set()
    for table in tables:
        old = {value for (name, value) in before if name == table}
        new = {value for (name, value) in after if name == table}
        rewritten = changed[table]
        rewritten_total += len(rewritten)
        partitions_total += len(old | new)
        if table == "staging.base_events_parsed":
            # by load run: only the batch's new load runs
            if rewritten & old:
                problems.append(f"{table}: rewrote earlier load runs {sorted(rewritten & old)}")
            continue
        days |= old | new
        expected = touched & (old | new)
        if table.startswith("scope."):
            # the lifecycle recomputes the days of the conversations with new events: no more
            expected_outside = rewritten - touched
            if expected_outside:
                problems.append(f"{table}: rewrote days outside the batch's {sorted(expected_outside)}")
        elif rewritten != expected:
            problems.append(f"{table}: rewrote {sorted(rewritten)}, the batch touched {sorted(expected)}")
    lonely = {table for (table, value) in after if value == LONELY_DAY}
    if lonely:
        problems.append(f"the day its only conversation left still has partitions in {sorted(lonely)}")
    if not {table for (table, value) in before if value == LONELY_DAY}:
        problems.append(f"batch 1 wrote no partition for {LONELY_DAY}: the lonely-day check checks nothing")
    if recorded != touched:
        problems.append(f"audit.partitions_rewritten on Spark records {sorted(recorded)}, touched {sorted(touched)}")
    if touched >= days:
        problems.append(f"the batch touched every day {sorted(days)}: nothing shows partitions left alone")
    print(f"\nSpark, batch 2: {rewritten_total} of {partitions_total} partitions rewritten in "
          f"{len(tables)} partitioned tables; days touched: {len(touched)} of {len(days)} "
          f"({', '.join(sorted(touched))}); recorded in audit.partitions_rewritten: {len(recorded)} days")
    if problems:
        sys.exit("partitions rewritten on Spark are not the days the batch touched:\n"
                 + "\n".join(f"  {problem}" for problem in problems))


def check_each_file_read_once(landing: Path, spark_dir: Path) -> None:
    """Spark's loader read each landing file once over both batches: batch 2's job skipped batch 1's
    unchanged files by their size and mtime in raw.landing_files_seen (a file read again would have
    a second row there), and recorded each file's current signature."""
    import duckdb

    from convo_warehouse.lib.landing import discover_files, file_signature

    rows = duckdb.connect().execute(
        "select source_file, file_bytes, modified_ns from read_parquet(?)",
        [str(spark_dir / "warehouse" / "raw.db" / "landing_files_seen" / "*.parquet")],
    ).fetchall()
    files = {path.relative_to(landing).as_posix(): file_signature(path) for path in discover_files(landing)}
    read = [(name, (size, modified)) for name, size, modified in rows]
    problems = [f"{name}: read {times} times" for name, times in Counter(name for name, _ in read).items() if times > 1]
    problems += [f"{row} {'recorded' if row in read else 'on disk'} only" for row in set(read) ^ set(files.items())]
    if problems:
        sys.exit("Spark's loader did not read each landing file exactly once (raw.landing_files_seen):\n"
                 + "\n".join(f"  {problem}" for problem in sorted(problems)))
    print(f"Spark's loader read each of the {len(files)} landing files once over both batches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=600)
    # a fixed end date: the generator's default (today, no event after now)
    # made the days a batch touches depend on the hour the check ran
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--end-date", default="2026-11-20")
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
        # demo-size data: the JIT's first tier only (docs/spark.md)
        "CONVO_SPARK_JAVA_OPTIONS": os.environ.get("CONVO_SPARK_JAVA_OPTIONS", SMALL_DATA_JAVA_OPTIONS),
    }
    Path(env["DAGSTER_HOME"]).mkdir(parents=True)
    check_local_file_system(spark_python, env)
    step(
        "generate demo events",
        [str(main_bin / "convo-warehouse"), "generate", "--conversations", str(args.conversations),
         "--days", str(args.days), "--seed", "11", "--end-date", args.end_date, "--out", str(generated)],
        env,
    )
    write_lonely_conversation(generated / "lonely-1", LONELY_BATCH_1)
    write_lonely_conversation(generated / "lonely-2", LONELY_BATCH_2)
    # batch 1: every day folder but the newest; batch 2: the newest day and
    # the late events (older days corrected by the incremental run)
    entries = sorted(generated.iterdir())
    dated = [path for path in entries if path.is_dir() and path.name[:1].isdigit()]
    later = [dated[-1], generated / "lonely-2",
             *(path for path in entries if path.is_dir() and path not in dated and not path.name.startswith("lonely"))]
    batches = [[path for path in entries if path not in later], later]
    spark_dir = Path(env["CONVO_SPARK_DIR"])
    spark_job = [str(main_bin / "convo-warehouse"), "run", "--landing", str(landing),
                 "--warehouse", str(work / "spark-run.duckdb"), "--quiet"]
    thrift_port, connect_port = free_port(), free_port()
    while connect_port == thrift_port:
        connect_port = free_port()
    # the Python steps and checks that run beside the job reach Spark through the server's Spark Connect
    connect_env = {**env, "CONVO_SPARK_CONNECT": f"sc://127.0.0.1:{connect_port}"}
    # its own dbt target folder: the DuckDB run beside it parses the project into the default one
    spark_env = {**connect_env, "CONVO_TARGET": "spark", "CONVO_SPARK_THRIFT": "running",
                 "CONVO_SPARK_THRIFT_PORT": str(thrift_port), "DBT_TARGET_PATH": str(work / "target-spark-job")}
    server = SparkServer(spark_python, thrift_port, connect_port, env, work / "spark-server.out")
    try:
        # the loaders' verdicts through the server too: a session of its own would start a JVM more
        check_loaders_agree(spark_python, work, connect_env)
        run_batches(batches, landing, warehouse, spark_dir, spark_job, env, spark_env, connect_env, main_bin,
                    spark_python, work)
    finally:
        server.stop()
    print("\nDuckDB and Spark agree on every contract mart, after a full batch and an incremental one, both "
          "built through one Spark server (dbt through Thrift, the Python steps through Spark Connect); Spark's "
          "incremental batch rewrote only the partitions of the days it touched.")
    for title, seconds in TIMES:
        print(f"  {seconds:7.1f} s  {title}")


def run_batches(batches, landing, warehouse, spark_dir, spark_job, env, spark_env, connect_env, main_bin,
                spark_python, work):
    """Each batch's files into the landing folder, the DuckDB pipeline beside the Spark job, the marts
    compared; after the incremental batch, the partitions Spark rewrote and the files its loader read."""
    server_log = spark_dir / "thrift-server.log"
    for number, batch in enumerate(batches, start=1):
        landing.mkdir(parents=True, exist_ok=True)
        for path in batch:
            shutil.move(str(path), landing / path.name)
        # DuckDB's run beside Spark's job: the two share only the landing files they read, and the
        # Spark job's start (a JVM, its servers) leaves a core to spare
        duckdb_run = Background(f"batch {number}: DuckDB pipeline", [str(main_bin / "convo-warehouse"), "run",
                                "--landing", str(landing), "--warehouse", str(warehouse)], env,
                                work / f"duckdb-batch-{number}.log")
        before = partition_files(spark_dir)
        log_start = server_log.stat().st_size
        how = (f"the running Spark server: dbt through Thrift on 127.0.0.1:{spark_env['CONVO_SPARK_THRIFT_PORT']}, "
               f"the Python steps through Spark Connect at {spark_env['CONVO_SPARK_CONNECT']}")
        timed(f"batch {number}: the Dagster job on Spark (CONVO_TARGET=spark, {how})", spark_job, spark_env)
        duckdb_run.wait()
        check_job_used_the_server(number, server_log, log_start)
        # a Spark Connect client of the server, which holds the metastore
        step(f"batch {number}: compare every contract mart", [str(spark_python), "-m",
             "convo_warehouse.spark", "compare", "--duckdb", str(warehouse)], connect_env)
        if number == 2:
            check_partitions_rewritten(before, partition_files(spark_dir), warehouse, spark_dir)
            check_each_file_read_once(landing, spark_dir)


TIMES: list[tuple[str, float]] = []


def timed(title: str, command: list[str], env: dict[str, str]) -> None:
    """``step``, its wall time kept for the summary."""
    import time

    started = time.monotonic()
    step(title, command, env)
    TIMES.append((title, time.monotonic() - started))


class Background:
    """``timed``, in a process of its own while the caller goes on; its output goes to ``log``, and is
    printed when it ends."""

    def __init__(self, title: str, command: list[str], env: dict[str, str], log: Path) -> None:
        import threading
        import time

        print(f"\n== {title} (beside the next step; output: {log})\n$ {' '.join(command)}", flush=True)
        self.title, self.log = title, log
        started = time.monotonic()
        with log.open("wb") as output:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)

        def timed_wait() -> None:  # its own time, not the step's it ran beside
            self.process.wait()
            TIMES.append((title, time.monotonic() - started))

        self.waiter = threading.Thread(target=timed_wait, daemon=True)
        self.waiter.start()

    def wait(self) -> None:
        self.waiter.join()
        returncode = self.process.returncode
        print(f"\n== {self.title}: its output\n{self.log.read_text(errors='replace')}", flush=True)
        if returncode != 0:
            sys.exit(f"check failed at: {self.title} (exit {returncode})")


class SparkServer:
    """``python -m convo_warehouse.spark serve`` in the background, for both batches: started here
    (returns once it listens, its log showing one start), stopped by ``stop()``."""

    def __init__(self, spark_python: Path, thrift_port: int, connect_port: int, env: dict[str, str],
                 output: Path) -> None:
        import time

        from convo_warehouse.spark.thrift import SERVER_STARTED_LINE

        command = [str(spark_python), "-m", "convo_warehouse.spark", "serve", "--port", str(thrift_port),
                   "--connect-port", str(connect_port)]
        print(f"\n== a Spark server for both batches\n$ {' '.join(command)}", flush=True)
        started = time.monotonic()
        self.output = output
        with output.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        while b"serving:" not in output.read_bytes():
            if self.process.poll() is not None:
                sys.exit(f"the Spark server did not start (exit {self.process.returncode}):\n"
                         + output.read_text(errors="replace"))
            time.sleep(0.5)
        log = Path(env["CONVO_SPARK_DIR"]) / "thrift-server.log"
        deadline = time.monotonic() + 60  # the line may follow the ports' opening by a moment
        while log.read_text(errors="replace").count(SERVER_STARTED_LINE) != 1:
            if time.monotonic() > deadline:
                sys.exit(f"the Spark server's log does not show one start (see {log})")
            time.sleep(0.5)
        TIMES.append(("the Spark server's start", time.monotonic() - started))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=120)


def check_job_used_the_server(batch: int, log: Path, offset: int) -> None:
    """The batch's Dagster job started no Spark server of its own, its dbt steps went through the
    running server's Thrift service and its Python steps through its Spark Connect service: the
    server's log (written only by the server) since the batch began shows no start, the statements
    run and the clients' operations."""
    from convo_warehouse.spark.thrift import CONNECT_OPERATION_LINE, SERVER_STARTED_LINE, STATEMENT_LINE

    text = log.read_bytes()[offset:].decode(errors="replace") if log.exists() else ""
    starts = text.count(SERVER_STARTED_LINE)
    statements = text.count(STATEMENT_LINE)
    operations = sum(1 for line in text.splitlines() if CONNECT_OPERATION_LINE in line and "is created" in line)
    print(f"batch {batch}, Spark server: {starts} start(s), {statements} statements through Thrift, "
          f"{operations} Spark Connect operations")
    if starts != 0 or statements == 0 or operations == 0:
        sys.exit(f"batch {batch}'s job did not run on the running Spark server through Thrift and Spark Connect "
                 f"(see {log})")
    # a class pyspark does not ship, needed by whatever touched it (thrift.MISSING_HIVE_INTERFACE)
    if "NoClassDefFoundError" in text:
        sys.exit(f"batch {batch}: the Spark server missed a class (NoClassDefFoundError in {log})")


if __name__ == "__main__":
    main()
