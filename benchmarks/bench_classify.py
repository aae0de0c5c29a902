"""Benchmark the stage classifier: rules on N synthetic conversations, llm against a local server.

    .venv/bin/python benchmarks/bench_classify.py --conversations 1000000
    .venv/bin/python benchmarks/bench_classify.py --skip-rules --llm-conversations 3000

Rules: synthetic transcripts (6 messages each, varied phrasing) are generated
in DuckDB straight into a temporary ``staging.stg_events``, then classified
through the same path as the asset (transcript hashing, cache check, rules,
write). A second run measures the cached path.

LLM: the fake chat-completions server (tests/support/fake_llm_server.py) runs in its own
process with --latency (default 50 ms); conversations are classified at
--concurrency (default 32), then re-run to confirm zero calls.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from convo_warehouse.lib.classify.llm import LLMSettings
from convo_warehouse.lib.classify.rules import load_rules
from convo_warehouse.lib.classify.runner import classify_warehouse

REPO = Path(__file__).resolve().parents[1]

USER_OPENERS = ["my order {n} has not arrived", "I cant log in to my account", "the app crashes when I open it",
                "I was charged twice this month", "Good morning. The device #PRS_ORG# not charge anymore"]
AGENT_GREETINGS = ["Hello! Thanks for contacting us. Let me check that for you.", "Hi #NAME#, sorry to hear that. Could you give me your order number?",
                   "Good morning, I understand your account is locked.", "Your order shipped yesterday."]
AGENT_FIXES = ["Please restart the app and log in again.", "I can send a replacement today, would that work?",
               "I have refunded the duplicate charge.", "Let me check with the team."]
USER_REPLIES = ["ok thanks, it works now", "yes please", "still not working", "hmm", "I will try later"]


def make_events(con: duckdb.DuckDBPyConnection, conversations: int) -> None:
    def array(values):
        return "[" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + "]"

    con.execute("create schema if not exists staging")
    con.execute(
        f"""
        create or replace table staging.stg_events as
        with conversations as (select range as n from range({conversations})),
        messages as (
            select n, m from conversations, range(6) as messages(m)
        )
        select
            'c' || n as conversation_id,
            'e' || n || '-' || m as event_id,
            timestamp '2025-01-01' + to_seconds(n % 86400 + m) as event_at,
            case when m % 2 = 0 then 'user_message' else 'agent_message' end as event_type,
            case m
                when 0 then replace({array(USER_OPENERS)}[1 + n % {len(USER_OPENERS)}], '{{n}}', n::varchar)
                when 1 then {array(AGENT_GREETINGS)}[1 + (n // 7) % {len(AGENT_GREETINGS)}]
                when 2 then 'it is order ' || n
                when 3 then {array(AGENT_FIXES)}[1 + (n // 3) % {len(AGENT_FIXES)}]
                when 4 then {array(USER_REPLIES)}[1 + (n // 11) % {len(USER_REPLIES)}]
                else 'Is there anything else I can help you with?'
            end as content,
        from messages
        """
    )


def bench_rules(conversations: int, workdir: Path) -> dict:
    con = duckdb.connect(str(workdir / "bench_rules.duckdb"))
    started = time.perf_counter()
    make_events(con, conversations)
    generated = time.perf_counter() - started
    rules = load_rules()  # read once: an edit during the run must not invalidate the cache
    cpu_started = time.process_time()
    first = classify_warehouse(con, "rules", rules=rules)
    cpu_seconds = time.process_time() - cpu_started
    second = classify_warehouse(con, "rules", rules=rules)
    messages = con.execute("select count(*) from staging.stg_events").fetchone()[0]
    con.close()
    return {
        "conversations": conversations,
        "messages": messages,
        "generate_seconds": round(generated, 2),
        "classify_seconds": round(first.seconds, 2),
        "conversations_per_second": round(conversations / first.seconds),
        "cpu_seconds": round(cpu_seconds, 2),
        "load_average": round(os.getloadavg()[0], 1),
        "rerun_seconds": round(second.seconds, 2),
        "rerun_classified": second.classified,
    }


def bench_llm(conversations: int, latency: float, concurrency: int, workdir: Path) -> dict:
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "fake_llm_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        con = duckdb.connect(str(workdir / "bench_llm.duckdb"))
        make_events(con, conversations)
        settings = LLMSettings(base_url=base_url, api_key="bench", model="fake", concurrency=concurrency,
                               timeout=10, circuit_breaker_failures=1000)
        cpu_started = time.process_time()
        first = classify_warehouse(con, "llm", settings)
        cpu_seconds = time.process_time() - cpu_started
        second = classify_warehouse(con, "llm", settings)
        con.close()
    finally:
        server.terminate()
        server.wait(10)
    return {
        "conversations": conversations,
        "latency_ms": latency * 1000,
        "concurrency": concurrency,
        "seconds": round(first.seconds, 2),
        "conversations_per_second": round(conversations / first.seconds),
        # CPU the client process used: on a shared, overloaded machine the wall-clock
        # rate is bounded by the CPU share we get; this is the rate one free core allows
        "client_cpu_seconds": round(cpu_seconds, 2),
        "conversations_per_cpu_second": round(conversations / cpu_seconds),
        "load_average": round(os.getloadavg()[0], 1),
        "llm_calls": first.llm_calls,
        "failed_calls": first.llm_failed_calls,
        "rerun_llm_calls": second.llm_calls,
        "rerun_seconds": round(second.seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000, help="rules benchmark size")
    parser.add_argument("--llm-conversations", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--skip-rules", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    args = parser.parse_args()
    results = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="bench_classify_") as tmp:
        if not args.skip_rules:
            results["rules"] = bench_rules(args.conversations, Path(tmp))
            print(json.dumps({"rules": results["rules"]}), flush=True)
        if not args.skip_llm:
            results["llm"] = bench_llm(args.llm_conversations, args.latency, args.concurrency, Path(tmp))
            print(json.dumps({"llm": results["llm"]}), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
