"""Benchmark: the whole pipeline's full build, one new day and a no-op run vs the floor.

In one run, on the same generated JSONL files (the contract's format):

1. **full build**: ``convo-warehouse run`` (the Dagster job: loader, every dbt
   model and test, rules classifier, GX suites) on 30 of 31 days, from empty;
2. **one new day**: the 31st day's file is added, ``convo-warehouse run`` again;
3. **one hour**: a fixed batch of about 10,000 events (800 conversations of
   the day after, the generator's own seed) on top of that history, run by
   the hourly job (``load_and_rebuild_job``, what the schedule runs every
   hour: no classifier) -- the same batch at every history size, so its cost
   should follow the batch, not the history; then **one conversation** (of
   the day after the hour) by the same job: what a run costs whatever
   arrives, the run's fixed cost, printed as a share of the hour;
4. **in a resident process**: ``convo-warehouse run --every 1`` (the hourly
   job, one process for every run: Dagster's definitions and the dbt server
   started once), given a first batch (one conversation, on the day the
   clock is on) to warm up, then an hour (800 other conversations, of the
   next day) and one more conversation (of the day after), so each moves the
   clock as the cold ones did; each batch is moved into the landing folder
   whole, and each run's time is the one the process prints (from its check
   to its end);
5. **no-op**: ``convo-warehouse run`` once more, with nothing new;
6. **floor**: one hand-written DuckDB query reading all 31 days of raw JSONL
   and computing the per-conversation facts (validation, dedupe, aliases,
   counts, flags, first response, feedback, rephrases, inferred abandonment).

7. **loader alone**: the loader (``load_landing``) reading all 31 days into
   an empty warehouse in a process of its own, for its time and peak memory
   (issue 26: at most 2 GiB at 10M events);
8. **sizes**: the warehouse file against the same events (every JSONL file
   loaded) written as one zstd Parquet file by DuckDB, and the blocks the
   tables holding every event take.

Each is a child process; we report wall time, the ratio to the floor and the
peak resident memory of the largest process of its tree. For the full build
we also report *load + facts*: the loader step plus the dbt models up to
``fct_conversations`` (their execution times from dbt's structured dbt.log).

    .venv/bin/python benchmarks/bench_pipeline.py --events 2000000
    make bench EVENTS=10000000

To measure the hour alone again (after a change to tests or materializations,
without paying for the history each time): ``--save-hour-state DIR`` keeps a
copy of the work folder as it stands before the hour (31 days built), and
``--hour-from DIR`` copies it back and runs only the hour step (``make
bench-hour STATE=DIR``; several folders and ``--rounds N``: the hour on each in
turn, N times, with the medians' ratio, the two histories measured in one
sitting); ``--save-day-state DIR`` and ``--day-from DIR`` do the
same for the new day (30 days built, the 31st held back: ``make bench
DAY_STATE=DIR``, then ``make bench-day STATE=DIR``). A change to a model's SQL
rebuilds that model whole in such a run (dbt's state comparison): compare
those with a full ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EVENTS_PER_CONVERSATION = 12.4  # measured on the generator's output
DAYS = 31  # 30 days of history, then one new day
END_DATE = "2026-01-31"
# the fixed one-hour batch: about 10,000 events of the day after the history
HOUR_CONVERSATIONS = 800
HOUR_DATE = "2026-02-01"
HOUR_SEED = 7001
# the smallest batch: one conversation of the day after the hour
ONE_CONVERSATION_DATE = "2026-02-02"
ONE_CONVERSATION_SEED = 7002
# the resident process's hour and conversation, after the cold ones: the next two days
RESIDENT_HOUR_DATE = "2026-02-03"
RESIDENT_CONVERSATION_DATE = "2026-02-04"

FLOOR_QUERY = r"""
create table floor_facts as
with raw as (
    select
        nullif(trim(event_id), '') as event_id,
        coalesce(nullif(trim(conversation_id), ''), nullif(trim(session_id), '')) as conversation_id,
        coalesce(nullif(trim(user_id), ''), nullif(trim(customer_id), '')) as user_id,
        lower(trim(event_type)) as raw_type,
        trim(timestamp) as ts,
        channel,
        properties,
        filename
    from read_ndjson(
        '{landing}/**/*.jsonl',
        columns = {{
            event_id: 'VARCHAR', conversation_id: 'VARCHAR', session_id: 'VARCHAR', user_id: 'VARCHAR',
            customer_id: 'VARCHAR', event_type: 'VARCHAR', timestamp: 'VARCHAR', channel: 'VARCHAR',
            properties: 'JSON'
        }},
        ignore_errors = true, filename = true
    )
),
parsed as (
    select *,
        case
            when regexp_full_match(ts, '-?[0-9]{{1,15}}') then epoch_ms(ts::bigint)
            when regexp_full_match(ts, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[Tt ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}([.][0-9]{{1,9}})?)?([Zz]|[+-][0-9]{{2}}(:?[0-9]{{2}})?)?')
                then try_cast(ts as timestamptz) at time zone 'UTC'
        end as event_at
    from raw
),
valid as (
    select * from parsed
    where event_id is not null and conversation_id is not null and raw_type is not null
      and event_at is not null and event_at <= now()::timestamp + interval 1 day
      and (properties is null or json_type(properties) = 'OBJECT')
    qualify row_number() over (partition by event_id order by filename) = 1
),
typed as (
    select *,
        case raw_type
            when 'started' then 'conversation_started' when 'session_start' then 'conversation_started'
            when 'message_sent' then 'user_message' when 'message_received' then 'agent_message'
            when 'agent_response' then 'agent_message' when 'escalation_requested' then 'handoff_requested'
            when 'feedback_submitted' then 'feedback_received' when 'completed' then 'conversation_completed'
            when 'abandoned' then 'conversation_abandoned' when 'session_end' then 'conversation_ended'
            when 'ab_exposure' then 'experiment_exposure' else raw_type
        end as event_type,
        json_extract_string(properties, ['$.content', '$.rating', '$.abandoned_at_turn', '$.device']) as props
    from valid
),
per_conversation as (
    select
        conversation_id,
        arg_min(user_id, event_at) filter (where user_id is not null) as user_id,
        arg_min(channel, event_at) filter (where channel is not null) as channel,
        arg_min(props[4], event_at) filter (where props[4] is not null and event_type in ('conversation_started', 'interaction_initialized')) as device,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        min(event_at) filter (where event_type not in ('interaction_initialized', 'experiment_exposure')) as started_at,
        count(*) filter (where event_type = 'user_message') as user_turns,
        count(*) filter (where event_type = 'agent_message') as agent_messages,
        count(*) filter (where event_type = 'fallback_triggered') as fallback_count,
        bool_or(event_type = 'handoff_requested') as had_handoff,
        bool_or(event_type = 'conversation_completed') as was_completed,
        bool_or(event_type = 'conversion') as converted,
        bool_or(event_type = 'conversation_abandoned') as abandon_event,
        min(event_at) filter (where event_type = 'user_message') as first_user_at,
        avg(case when lower(props[2]) = 'positive' then 1.0 when lower(props[2]) = 'negative' then 0.0
                 when props[2] in ('1', '2', '3', '4', '5') then (props[2]::double - 1) / 4 end)
            filter (where event_type = 'feedback_received') as feedback_score
    from typed
    group by conversation_id
),
replies as (
    select typed.conversation_id, min(typed.event_at) as first_reply_at
    from typed join per_conversation using (conversation_id)
    where typed.event_type = 'agent_message' and typed.event_at >= per_conversation.first_user_at
    group by 1
),
rephrases as (
    select conversation_id, count(*) filter (
        where len(words) > 0 and len(previous) > 0
          and len(list_intersect(words, previous)) / len(list_distinct(list_concat(words, previous))) >= 0.5
    ) as rephrase_count
    from (
        select conversation_id, words,
               lag(words) over (partition by conversation_id order by event_at, event_id) as previous
        from (
            select conversation_id, event_at, event_id,
                   list_distinct(regexp_extract_all(lower(coalesce(props[1], '')), '[a-z0-9'']+')) as words
            from typed where event_type = 'user_message'
        )
    )
    group by 1
),
newest as (select max(event_at) as newest_at from typed)
select
    per_conversation.*,
    date_diff('millisecond', first_user_at, first_reply_at) as first_response_ms,
    coalesce(rephrases.rephrase_count, 0) as rephrase_count,
    abandon_event or (user_turns > 0 and not was_completed and not had_handoff and not converted
                      and last_event_at < newest_at - interval 30 minute) as was_abandoned,
    date_diff('millisecond', started_at, last_event_at) / 1000.0 as duration_seconds
from per_conversation
cross join newest
left join replies using (conversation_id)
left join rephrases using (conversation_id)
"""

FLOOR_SCRIPT = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("set enable_progress_bar = false")
con.execute(sys.argv[2])
print(con.execute("select count(*) from floor_facts").fetchone()[0], "conversations")
"""

# The loader alone (issue 26's memory target): every landing file into an
# empty warehouse, as the pipeline's loader step runs it, in its own process.
LOADER_SCRIPT = """
import sys
from pathlib import Path
from convo_warehouse.lib.landing import load_landing
from convo_warehouse.lib.warehouse import connect
con = connect(Path(sys.argv[1]))
print(load_landing(con, Path(sys.argv[2]), progress=False).summary())
"""

COUNT_SCRIPT = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("select count(*) from raw.events").fetchone()[0])
"""

# The warehouse file's size against the same events as Parquet (zstd), and
# what the tables holding every event take of it (DuckDB's storage_info: the
# blocks of each table's column segments, a zstd column's overflow blocks
# included; blocks are 256 KiB). stg_events and rejected_events are views
# over base_events_parsed.
SIZE_SCRIPT = """
import json, sys, duckdb
warehouse, landing, parquet = sys.argv[1:4]
con = duckdb.connect()
con.execute("set enable_progress_bar = false")
# the generator's bad lines (about 0.06%) are left out: they are no events
con.execute(f"copy (select * from read_ndjson('{landing}/**/*.jsonl', union_by_name = true, ignore_errors = true)) "
            f"to '{parquet}' (format parquet, compression zstd)")
con.execute(f"attach '{warehouse}' as warehouse (read_only)")
tables = {}
for name in ("staging.base_events_parsed", "marts.fct_messages"):
    try:
        # a zstd segment keeps its strings in overflow blocks (additional_block_ids)
        tables[name] = con.execute(
            f"select count(distinct block) * 262144 from ("
            f"select block_id as block from pragma_storage_info('warehouse.{name}') where block_id >= 0 "
            f"union all select unnest(additional_block_ids) from pragma_storage_info('warehouse.{name}'))"
        ).fetchone()[0]
    except duckdb.Error:
        tables[name] = None
print(json.dumps(tables))
"""


# Models whose time counts as "facts" besides the loader: fct_conversations
# and every model it is built from (read from the manifest).
FACTS_MODEL = "model.convo_warehouse.fct_conversations"


def timed_child(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a child process; return (seconds, peak RSS of its largest process in MiB, output)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, output


def facts_seconds(target: Path, since: float, output: str) -> float | None:
    """Loader step + dbt models up to fct_conversations, for the run that started at ``since``."""
    loader = _loader_seconds(output)
    manifest_file = target / "manifest.json"
    if loader is None or not manifest_file.exists():
        return None
    parents = json.loads(manifest_file.read_text())["parent_map"]
    wanted, stack = set(), [FACTS_MODEL]
    while stack:
        node = stack.pop()
        if node.startswith("model.") and node not in wanted:
            wanted.add(node)
            stack.extend(parents.get(node, []))
    seconds = sum(
        execution_time
        for invocation in dbt_invocations(target, since).values()
        for unique_id, execution_time in invocation["results"]
        if unique_id in wanted
    )
    return loader + seconds


DAGSTER_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+0000 - dagster - \w+ - \S+ - \S+ - (\S+) - ")


def run_profile(target: Path, since: float, output: str, top: int = 8) -> dict:
    """Where a run's time went: each Dagster step's time (1 s resolution) and, per dbt invocation, its elapsed time, the summed
    data-test time and the slowest models."""
    spans: dict[str, list[datetime]] = {}
    for line in output.splitlines():
        match = DAGSTER_LINE.match(line)
        if match:
            moment = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
            spans.setdefault(match.group(2), [moment, moment])[1] = moment
    # the in-process executor runs steps one after another: a step lasts from
    # its first log line to the next step's first line
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    ends = [start for _, (start, _) in ordered[1:]] + [max((end for _, (_, end) in ordered), default=None)]
    steps = {step: (end - start).total_seconds() for (step, (start, _)), end in zip(ordered, ends)}
    invocations = {}
    for name, invocation in dbt_invocations(target, since).items():
        results = invocation["results"]
        models = sorted((r for r in results if r[0].startswith("model.")), key=lambda r: -r[1])
        tests = [seconds for unique_id, seconds in results if unique_id.startswith("test.")]
        invocations[name] = {
            "elapsed_seconds": round(invocation["elapsed_seconds"], 1),
            "models": len(models),
            "data_tests": len(tests),
            "data_test_seconds": round(sum(tests), 1),
            "slowest_models": {unique_id.split(".")[-1]: round(seconds, 1) for unique_id, seconds in models[:top]},
        }
    return {"dagster_steps_seconds": steps, "dbt": invocations}


def dbt_invocations(target: Path, since: float) -> dict[str, dict]:
    """Each dbt invocation since ``since``: its elapsed time and (unique id, seconds) per node, from its
    ``dbt.log`` (a production build writes no run_results.json: lib/dbt_commands.py)."""
    from convo_warehouse.lib.dbt_commands import build_results

    invocations = {}
    for log_file in sorted(target.glob("*/dbt.log"), key=lambda path: path.stat().st_mtime):
        if log_file.stat().st_mtime < since:
            continue
        elapsed, results = build_results(log_file)
        if elapsed is not None:
            invocations[log_file.parent.name.split("-")[0]] = {
                "elapsed_seconds": elapsed,
                "results": [(unique_id, seconds) for unique_id, _, seconds in results],
            }
    return invocations


def print_profile(title: str, profile: dict) -> None:
    print(f"\nwhere the time goes: {title}")
    steps = sorted(profile["dagster_steps_seconds"].items(), key=lambda item: -item[1])
    print("  dagster steps (s): " + ", ".join(f"{step} {seconds:.0f}" for step, seconds in steps if seconds >= 1))
    for name, dbt in profile["dbt"].items():
        slowest = ", ".join(f"{model} {seconds}" for model, seconds in dbt["slowest_models"].items())
        print(f"  {name}: dbt {dbt['elapsed_seconds']} s elapsed, {dbt['models']} models, {dbt['data_tests']} data tests "
              f"summing {dbt['data_test_seconds']} s; "
              f"slowest models (s): {slowest}")


def outside_dbt(seconds: float, profile: dict) -> float | None:
    """A run's time outside dbt's build: the run minus the elapsed time each dbt invocation reports
    (its nodes, from the first to the last), so dbt's own start-up counts as outside."""
    elapsed = [dbt["elapsed_seconds"] for dbt in profile["dbt"].values()]
    return seconds - sum(elapsed) if elapsed else None


def _loader_seconds(output: str) -> float | None:
    """From the Dagster log: the loader's 'loading new files' line to its summary line."""
    stamps = {}
    for line in output.splitlines():
        match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+0000 - dagster - \w+ - \S+ - \S+ - load_landing_files - (\S+)", line)
        if match:
            moment = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
            stamps.setdefault("start" if match.group(2) == "loading" else "end", moment)
            if match.group(2) == "load":
                stamps["end"] = moment
    if "start" in stamps and "end" in stamps:
        return (stamps["end"] - stamps["start"]).total_seconds()
    return None


def work_env(work: Path) -> dict[str, str]:
    """The environment of every pipeline child process working in ``work``."""
    return {
        **os.environ,
        "CONVO_DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "CONVO_LANDING_DIR": str(work / "landing"),
        "CONVO_CLASSIFIER": "rules",
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_HOME": str(work / "dagster_home"),
    }


def run_batch(work: Path, folder: str, conversations: int, seed: int, day: str) -> tuple[int, float, float, dict]:
    """``conversations`` generated conversations of ``day`` landed in ``work/landing/folder`` and run by
    the hourly job: (lines, seconds, peak MiB, profile)."""
    batch_landing = work / "landing" / folder
    timed_child(
        [str(BIN / "convo-warehouse"), "generate", "-n", str(conversations), "--days", "1", "--seed",
         str(seed), "--end-date", day, "--format-mix", "jsonl=1", "--out", str(batch_landing), "-q"]
    )
    lines = sum(1 for path in batch_landing.rglob("*.jsonl") for _ in path.open())
    started = time.time()
    seconds, rss, output = timed_child(
        [str(BIN / "convo-warehouse"), "run", "--quiet", "--job", "load_and_rebuild_job"], work_env(work)
    )
    return lines, seconds, rss, run_profile(work / "target", started, output)


def run_hour(work: Path) -> tuple[int, float, float, dict]:
    """The fixed hour batch, run by the hourly job: (lines, seconds, peak MiB, profile)."""
    return run_batch(work, "hour", HOUR_CONVERSATIONS, HOUR_SEED, HOUR_DATE)


def generate_batch(work: Path, folder: str, conversations: int, seed: int, day: str) -> int:
    """``conversations`` generated conversations of ``day``, moved into ``work/landing/folder`` whole
    (a resident run must not read a file still being written): their lines."""
    incoming = work / "incoming" / folder
    timed_child(
        [str(BIN / "convo-warehouse"), "generate", "-n", str(conversations), "--days", "1", "--seed",
         str(seed), "--end-date", day, "--format-mix", "jsonl=1", "--out", str(incoming), "-q"]
    )
    lines = sum(1 for path in incoming.rglob("*.jsonl") for _ in path.open())
    incoming.rename(work / "landing" / folder)
    return lines


RUN_FINISHED = re.compile(r"Run finished in ([0-9.]+) s")
RESIDENT_RUNS = ("first run (warm-up)", "next hour", "one more conversation")


def run_resident(work: Path, batches: list[tuple[str, int, str]]) -> dict:
    """Three batches (``conversations``, ``seed``, ``day``) in one ``convo-warehouse run --every 1``
    process: a first one (one conversation) that starts what the process keeps, an hour, one more
    conversation. Each run's seconds as it prints them, its profile, and the process's peak MiB.
    Their days move the warehouse's clock as the cold hour's and conversation's did (the first batch
    on the day the clock is on), since a clock moving by a day flips conversations to abandoned."""
    process = subprocess.Popen(
        [str(BIN / "convo-warehouse"), "run", "--every", "1", "--quiet", "--job", "load_and_rebuild_job"],
        cwd=REPO_ROOT, env=work_env(work), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output: list[str] = []

    def next_run() -> tuple[float, str]:
        start = len(output)
        for line in process.stdout:
            output.append(line)
            match = RUN_FINISHED.search(line)
            if match:
                return float(match.group(1)), "".join(output[start:])
        raise SystemExit(f"the resident run ended:\n{''.join(output[-60:])}")

    try:
        next_run()  # its first check: up to date
        runs = {}
        for name, (conversations, seed, day) in zip(RESIDENT_RUNS, batches, strict=True):
            folder = "resident_" + name.split()[1]
            lines = generate_batch(work, folder, conversations, seed, day)
            started = time.time()
            seconds, text = next_run()
            runs[name] = {"lines": lines, "seconds": seconds, "profile": run_profile(work / "target", started, text)}
        process.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the resident run failed:\n{''.join(output[-60:])}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return {"runs": runs, "peak_rss_mib": usage.ru_maxrss / 1024}


def save_state(work: Path, state: Path) -> None:
    """A copy of the work folder (warehouse, landing, snapshots, Dagster home; hard links kept)."""
    shutil.rmtree(state, ignore_errors=True)
    subprocess.run(["cp", "-a", str(work), str(state)], check=True)


def copy_state(state: Path, work: Path, option: str) -> None:
    """``work`` as a copy of ``state`` (a folder ``option`` wrote), with the project as it is now parsed."""
    if not (state / "warehouse.duckdb").exists():
        raise SystemExit(f"{state} holds no warehouse.duckdb: write it with {option} first")
    shutil.rmtree(work, ignore_errors=True)
    save_state(state, work)
    # the copy's dirty pages (gigabytes at 10M) are written back now, not while
    # the timed run waits on its own commits
    os.sync()
    # the manifest of the project as it is now, parsed outside the timing
    shutil.rmtree(work / "target", ignore_errors=True)
    timed_child([sys.executable, "-c", "from convo_warehouse.project import ensure_manifest; ensure_manifest()"],
                work_env(work))


def run_new_day(work: Path) -> tuple[float, float, dict]:
    """The held-back last day moved into the landing folder and ``convo-warehouse run``: (seconds, peak MiB,
    profile)."""
    print("one new day ...", flush=True)
    shutil.move(str(work / "held_back" / END_DATE), work / "landing" / END_DATE)
    started = time.time()
    seconds, rss, output = timed_child([str(BIN / "convo-warehouse"), "run", "--quiet"], work_env(work))
    return seconds, rss, run_profile(work / "target", started, output)


def day_only(state: Path, work: Path, keep: bool) -> None:
    """The new-day step alone, on a copy of ``state`` (a --save-day-state folder: 30 days built, the
    31st held back): the project as it is now."""
    copy_state(state, work, "--save-day-state (make bench DAY_STATE=dir)")
    seconds, rss, profile = run_new_day(work)
    print(f"one new day: {seconds:.1f} s, peak {rss:,.0f} MiB")
    report_step("one new day", seconds, profile, work, keep)


def hour_only(state: Path, work: Path, keep: bool, resident: bool, quiet: bool = False) -> tuple[float, float | None]:
    """The hour step alone, on a copy of ``state`` (a --save-hour-state folder): the project as it is now
    (``resident``: in a resident process, after a warm-up run). Its seconds and the part outside dbt's build."""
    copy_state(state, work, "--save-hour-state (make bench STATE=dir)")
    if resident:
        print("the next hour in one resident process (run --every) ...", flush=True)
        # the cold hour's own batches, after a warm-up conversation on the history's last day
        runs = run_resident(work, [(1, ONE_CONVERSATION_SEED + 1, END_DATE), (HOUR_CONVERSATIONS, HOUR_SEED, HOUR_DATE),
                                   (1, ONE_CONVERSATION_SEED, ONE_CONVERSATION_DATE)])["runs"]
        lines, seconds, profile = runs["next hour"]["lines"], runs["next hour"]["seconds"], runs["next hour"]["profile"]
        print(f"the next hour ({lines:,} lines): {seconds:.1f} s; one more conversation: "
              f"{runs['one more conversation']['seconds']:.1f} s; the first run (warm-up): "
              f"{runs['first run (warm-up)']['seconds']:.1f} s")
        for name in ("first run (warm-up)", "one more conversation"):
            print_profile(name, runs[name]["profile"])
    else:
        print("one hour (10,000 events, the hourly job) ...", flush=True)
        lines, seconds, rss, profile = run_hour(work)
        print(f"one hour ({lines:,} lines): {seconds:.1f} s, peak {rss:,.0f} MiB")
    report_step("one hour", seconds, profile, work, keep, quiet)
    return seconds, outside_dbt(seconds, profile)


def hours_interleaved(states: list[Path], work: Path, rounds: int, keep: bool, resident: bool) -> None:
    """The hour on each saved history in turn, ``rounds`` times (A B A B ...), so that every history
    meets the machine in the same moods: each round's seconds and the medians, and each history's
    median against the first one's. Two ``make bench`` runs are two sittings; this is one."""
    times: dict[Path, list[tuple[float, float | None]]] = {state: [] for state in states}
    for number in range(1, rounds + 1):
        for state in states:
            print(f"round {number} of {rounds}: {state}", flush=True)
            times[state].append(hour_only(state, work, keep, resident, quiet=True))
    print(f"\nthe hour, {rounds} round(s) interleaved: seconds (outside dbt's build)")
    first = statistics.median(seconds for seconds, _ in times[states[0]])
    for state in states:
        runs = times[state]
        median = statistics.median(seconds for seconds, _ in runs)
        outside = [value for _, value in runs if value is not None]
        each = ", ".join(f"{seconds:.1f}" + (f" ({value:.1f})" if value is not None else "") for seconds, value in runs)
        print(f"  {state}: {each}; median {median:.1f} s"
              + (f" ({statistics.median(outside):.1f} s outside)" if outside else "")
              + (f", {median / first:.2f}x the first" if state != states[0] else ""))
        if state != states[0]:
            ratios = ", ".join(f"{seconds / base:.2f}x" for (seconds, _), (base, _) in zip(runs, times[states[0]]))
            print(f"    round by round against the first: {ratios}")


def report_step(title: str, seconds: float, profile: dict, work: Path, keep: bool, quiet: bool = False) -> None:
    """A step run alone: its time outside dbt's build and (unless ``quiet``) its profile; its work folder
    removed unless ``keep``."""
    outside = outside_dbt(seconds, profile)
    if outside is not None:
        print(f"  of which outside dbt's build (start-ups, loader, checks, publish): {outside:.1f} s")
    if not quiet:
        print_profile(title, profile)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000, help="approximate raw events to generate (default 2,000,000)")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "work", help="scratch folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated files and warehouses")
    parser.add_argument("--save-hour-state", type=Path, metavar="DIR",
                        help="copy the work folder, as it stands before the hour step, to DIR")
    parser.add_argument("--hour-from", type=Path, metavar="DIR", nargs="+",
                        help="run only the hour step, on a copy of a folder --save-hour-state wrote (of each, in turn)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --hour-from: run the hour this many times on each folder, interleaved (default 1)")
    parser.add_argument("--resident", action="store_true",
                        help="with --hour-from: run the hour in a resident process (run --every), after a warm-up run")
    parser.add_argument("--save-day-state", type=Path, metavar="DIR",
                        help="copy the work folder, as it stands before the new day (the 31st day held back), to DIR")
    parser.add_argument("--day-from", type=Path, metavar="DIR",
                        help="run only the new day, on a copy of a folder --save-day-state wrote")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.hour_from:
        states = [state.resolve() for state in args.hour_from]
        if len(states) == 1 and args.rounds == 1:
            hour_only(states[0], args.workdir.resolve(), keep=args.keep, resident=args.resident)
        else:
            hours_interleaved(states, args.workdir.resolve(), args.rounds, keep=args.keep, resident=args.resident)
        return
    if args.day_from:
        day_only(args.day_from.resolve(), args.workdir.resolve(), keep=args.keep)
        return

    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    landing = work / "landing"
    held_back = work / "held_back"
    work.mkdir(parents=True)
    held_back.mkdir()
    conversations = max(1, int(args.events / EVENTS_PER_CONVERSATION))

    print(f"generating ~{args.events:,} events ({conversations:,} conversations over {DAYS} days, JSONL) ...", flush=True)
    gen_seconds, gen_rss, _ = timed_child(
        [str(BIN / "convo-warehouse"), "generate", "-n", str(conversations), "--days", str(DAYS), "--seed", str(args.seed),
         "--end-date", END_DATE, "--format-mix", "jsonl=1", "--out", str(landing), "-q"]
    )
    # The last day is held back: it is the "one new day" of the second run.
    new_day = landing / END_DATE
    shutil.move(str(new_day), held_back / END_DATE)

    warehouse = work / "warehouse.duckdb"
    target = work / "target"
    env = work_env(work)
    (work / "dagster_home").mkdir()
    (work / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # Parse once outside the timing: a fixed cost of a changed project, not of the data.
    timed_child([sys.executable, "-c", "from convo_warehouse.project import ensure_manifest; ensure_manifest()"], env)
    run = [str(BIN / "convo-warehouse"), "run", "--quiet"]

    print(f"full build of {DAYS - 1} days (convo-warehouse run) ...", flush=True)
    started = time.time()
    full_seconds, full_rss, full_output = timed_child(run, env)
    full_facts = facts_seconds(target, started, full_output)
    full_profile = run_profile(target, started, full_output)
    history_events = int(subprocess.run([sys.executable, "-c", COUNT_SCRIPT, str(warehouse)],
                                        capture_output=True, text=True, check=True).stdout)

    if args.save_day_state:
        save_state(work, args.save_day_state.resolve())
    day_seconds, day_rss, day_profile = run_new_day(work)
    profiles = {"full build": full_profile, "one new day": day_profile}
    events = int(subprocess.run([sys.executable, "-c", COUNT_SCRIPT, str(warehouse)],
                                capture_output=True, text=True, check=True).stdout)

    if args.save_hour_state:
        save_state(work, args.save_hour_state.resolve())
    print("one hour (10,000 events, the hourly job) ...", flush=True)
    hour_events, hour_seconds, hour_rss, profiles["one hour"] = run_hour(work)
    print("one conversation (the hourly job) ...", flush=True)
    one_events, one_seconds, one_rss, profiles["one conversation"] = run_batch(
        work, "one_conversation", 1, ONE_CONVERSATION_SEED, ONE_CONVERSATION_DATE
    )

    print("the next hour and a conversation in one resident process (run --every) ...", flush=True)
    # after the cold runs: the warm-up on the clock's day, then an hour of the next day, a conversation of the day after
    resident = run_resident(work, [(1, ONE_CONVERSATION_SEED + 1, ONE_CONVERSATION_DATE),
                                   (HOUR_CONVERSATIONS, HOUR_SEED + 1, RESIDENT_HOUR_DATE),
                                   (1, ONE_CONVERSATION_SEED + 2, RESIDENT_CONVERSATION_DATE)])
    resident_hour, resident_one = resident["runs"]["next hour"], resident["runs"]["one more conversation"]
    profiles["resident: next hour"] = resident_hour["profile"]

    print("no-op run ...", flush=True)
    noop_seconds, noop_rss, noop_output = timed_child([*run, "--job", "load_and_rebuild_job"], env)
    if "nothing built" not in noop_output:
        raise SystemExit(f"the no-op run built something:\n{noop_output[-3000:]}")

    print("floor: one hand-written DuckDB query over the raw JSONL files ...", flush=True)
    floor_seconds, floor_rss, floor_output = timed_child(
        [sys.executable, "-c", FLOOR_SCRIPT, str(work / "floor.duckdb"), FLOOR_QUERY.format(landing=landing)]
    )
    print(f"  {floor_output.strip()}")

    print("the loader alone: every landing file into an empty warehouse ...", flush=True)
    loader_seconds, loader_rss, _ = timed_child(
        [sys.executable, "-c", LOADER_SCRIPT, str(work / "loader.duckdb"), str(landing)], env
    )
    (work / "loader.duckdb").unlink()

    print("sizes: the warehouse file, the same events as Parquet (zstd) ...", flush=True)
    parquet_path = work / "events.zstd.parquet"
    table_bytes = json.loads(subprocess.run(
        [sys.executable, "-c", SIZE_SCRIPT, str(warehouse), str(landing), str(parquet_path)],
        capture_output=True, text=True, check=True).stdout)
    warehouse_bytes, parquet_bytes = warehouse.stat().st_size, parquet_path.stat().st_size
    # the raw rows' Parquet files beside the DuckDB file (lib/landing/archive.py)
    archive_bytes = sum(path.stat().st_size for path in (work / "warehouse.raw").rglob("*") if path.is_file())

    rows = [
        ("full build (30 days)", full_seconds, full_rss),
        ("  of which load + facts", full_facts, None),
        ("one new day", day_seconds, day_rss),
        ("one hour (hourly job)", hour_seconds, hour_rss),
        ("one conversation (hourly)", one_seconds, one_rss),
        ("resident: next hour", resident_hour["seconds"], resident["peak_rss_mib"]),
        ("resident: a conversation", resident_one["seconds"], None),
        ("no-op run", noop_seconds, noop_rss),
        ("loader alone (31 days)", loader_seconds, loader_rss),
        ("floor: one query (31 days)", floor_seconds, floor_rss),
    ]
    hour_outside = outside_dbt(hour_seconds, profiles["one hour"])
    resident_outside = outside_dbt(resident_hour["seconds"], resident_hour["profile"])
    result = {
        "raw_events": events,
        "raw_events_history": history_events,
        "conversations": conversations,
        "generate_seconds": round(gen_seconds, 2),
        "generate_peak_rss_mib": round(gen_rss),
        "phases": {
            name.strip(): {
                "seconds": None if seconds is None else round(seconds, 2),
                "ratio_to_floor": None if seconds is None else round(seconds / floor_seconds, 2),
                "peak_rss_mib": None if rss is None else round(rss),
            }
            for name, seconds, rss in rows
        },
        "new_day_share_of_full_build": round(day_seconds / full_seconds, 3),
        "hour_batch_lines": hour_events,
        "one_conversation_lines": one_events,
        "one_conversation_share_of_hour": round(one_seconds / hour_seconds, 3),
        "hour_outside_dbt_seconds": None if hour_outside is None else round(hour_outside, 1),
        "resident_runs": {name: {"lines": run["lines"], "seconds": run["seconds"]}
                          for name, run in resident["runs"].items()},
        "resident_hour_outside_dbt_seconds": None if resident_outside is None else round(resident_outside, 1),
        "warehouse_bytes": warehouse_bytes,
        "events_parquet_zstd_bytes": parquet_bytes,
        "warehouse_to_parquet": round(warehouse_bytes / parquet_bytes, 2),
        "raw_archive_bytes": archive_bytes,
        "warehouse_and_raw_archive_to_parquet": round((warehouse_bytes + archive_bytes) / parquet_bytes, 2),
        "event_table_bytes": table_bytes,
        "profiles": profiles,
    }
    print()
    print(f"raw events: {events:,} ({history_events:,} in the first 30 days)")
    print(f"{'phase':<28} {'seconds':>9} {'x floor':>8} {'peak MiB':>9}")
    for name, seconds, rss in rows:
        shown = "n/a" if seconds is None else f"{seconds:.1f}"
        ratio = "" if seconds is None else f"{seconds / floor_seconds:.1f}x"
        print(f"{name:<28} {shown:>9} {ratio:>8} {'' if rss is None else f'{rss:,.0f}':>9}")
    print(f"one new day / full build: {day_seconds / full_seconds:.1%}")
    print(f"one hour ({hour_events:,} lines): {hour_seconds:.1f} s (target <= 20 s at 2M and 10M)")
    if hour_outside is not None:
        print(f"  of which outside dbt's build (start-ups, loader, checks, publish): {hour_outside:.1f} s (target <= 6 s)")
    print(f"one conversation ({one_events:,} lines): {one_seconds:.1f} s = {one_seconds / hour_seconds:.0%} of the hour "
          "(what every run pays, whatever arrives)")
    print(f"in one resident process (run --every): the next hour ({resident_hour['lines']:,} lines) "
          f"{resident_hour['seconds']:.1f} s (target <= 20 s)")
    if resident_outside is not None:
        print(f"  of which outside dbt's build: {resident_outside:.1f} s (target <= 6 s)")
    print(f"  one more conversation: {resident_one['seconds']:.1f} s = "
          f"{resident_one['seconds'] / resident_hour['seconds']:.0%} of that hour; its first run (warm-up): "
          f"{resident['runs']['first run (warm-up)']['seconds']:.1f} s")
    print(f"warehouse file: {warehouse_bytes / 2**20:,.0f} MiB = {warehouse_bytes / parquet_bytes:.1f}x the events "
          f"as Parquet zstd ({parquet_bytes / 2**20:,.0f} MiB; target <= 8x)")
    print(f"  with the raw rows' Parquet beside it ({archive_bytes / 2**20:,.0f} MiB): "
          f"{(warehouse_bytes + archive_bytes) / parquet_bytes:.1f}x")
    for name, size in table_bytes.items():
        print(f"  {name:<28} {'n/a' if size is None else f'{size / 2**20:,.0f} MiB':>10}")
    for title, profile in profiles.items():
        print_profile(title, profile)
    results_dir = REPO_ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"pipeline_{events}.json").write_text(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
