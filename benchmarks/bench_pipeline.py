"""Benchmark: our loader + dbt build of the facts vs the floor, in one run.

The floor is one hand-written DuckDB query that reads the raw Parquet files
and computes the same per-conversation columns (validated, de-duplicated,
alias-mapped events -> counts, flags, first response, satisfaction,
rephrases). Both sides run as child processes on the same files, one after
the other, and we report wall time, the ratio and each side's peak RSS.

    .venv/bin/python benchmarks/bench_pipeline.py --events 2000000
    make bench EVENTS=10000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EVENTS_PER_CONVERSATION = 12.4  # measured on the generator's output

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
        filename,
        file_row_number
    from read_parquet('{landing}/**/*.parquet', union_by_name = true, filename = true, file_row_number = true)
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
    qualify row_number() over (partition by event_id order by filename, file_row_number) = 1
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

LOAD_SCRIPT = """
import sys, duckdb, pathlib
from convo_warehouse.lib.landing import load_landing
con = duckdb.connect(sys.argv[1])
print(load_landing(con, pathlib.Path(sys.argv[2]), progress=False).summary())
"""

FLOOR_SCRIPT = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute(sys.argv[2])
print(con.execute("select count(*) from floor_facts").fetchone()[0], "conversations")
"""


def timed_child(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a child process; return (seconds, peak RSS in MiB, stdout tail)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, output.strip().splitlines()[-1] if output.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000, help="approximate raw events to generate (default 2,000,000)")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "work", help="scratch folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated files and warehouses")
    args = parser.parse_args()

    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    landing = work / "landing"
    work.mkdir(parents=True)
    conversations = max(1, int(args.events / EVENTS_PER_CONVERSATION))

    print(f"generating ~{args.events:,} events ({conversations:,} conversations, Parquet) ...", flush=True)
    gen_seconds, gen_rss, _ = timed_child(
        [str(BIN / "convo-warehouse"), "generate", "-n", str(conversations), "--days", "14", "--seed", str(args.seed),
         "--end-date", "2026-01-31", "--format-mix", "parquet=1", "--out", str(landing), "-q"]
    )
    warehouse = work / "warehouse.duckdb"
    env = {
        **os.environ,
        "CONVO_DUCKDB_PATH": str(warehouse),
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    # Parse once outside the timing: a fixed cost of dbt, not of the data.
    timed_child([str(BIN / "dbt"), "parse", "--quiet"], env)

    print("ours: loader ...", flush=True)
    load_seconds, load_rss, load_out = timed_child([sys.executable, "-c", LOAD_SCRIPT, str(warehouse), str(landing)], env)
    print(f"  {load_out}")
    print("ours: dbt build of the facts (staging, quarantine, fct_conversations, their tests) ...", flush=True)
    dbt_seconds, dbt_rss, _ = timed_child(
        [str(BIN / "dbt"), "build", "--quiet", "--select", "+fct_conversations", "--indirect-selection", "cautious"], env
    )
    events = int(subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.connect('{warehouse}', read_only=True).execute('select count(*) from raw.events').fetchone()[0])"],
        capture_output=True, text=True, check=True,
    ).stdout)

    print("floor: one hand-written DuckDB query over the raw Parquet files ...", flush=True)
    floor_db = work / "floor.duckdb"
    floor_seconds, floor_rss, floor_out = timed_child(
        [sys.executable, "-c", FLOOR_SCRIPT, str(floor_db), FLOOR_QUERY.format(landing=landing)]
    )
    print(f"  {floor_out}")

    ours = load_seconds + dbt_seconds
    result = {
        "raw_events": events,
        "conversations": conversations,
        "generate_seconds": round(gen_seconds, 2),
        "load_seconds": round(load_seconds, 2),
        "dbt_build_seconds": round(dbt_seconds, 2),
        "ours_seconds": round(ours, 2),
        "floor_seconds": round(floor_seconds, 2),
        "ratio": round(ours / floor_seconds, 2),
        "peak_rss_mib": {"generate": round(gen_rss), "load": round(load_rss), "dbt": round(dbt_rss), "floor": round(floor_rss)},
    }
    print()
    print(f"raw events              {events:>12,}")
    print(f"ours: load              {load_seconds:>10.2f} s   peak {load_rss:,.0f} MiB")
    print(f"ours: dbt build facts   {dbt_seconds:>10.2f} s   peak {dbt_rss:,.0f} MiB")
    print(f"ours: total             {ours:>10.2f} s")
    print(f"floor: one query        {floor_seconds:>10.2f} s   peak {floor_rss:,.0f} MiB")
    print(f"ratio ours / floor      {ours / floor_seconds:>10.2f} x")
    results_dir = REPO_ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"pipeline_{events}.json").write_text(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
