"""Batch and live agree: the same events, sent event by event through a real collector, give the
live state the stages the batch rules classifier writes; the interventions it fired reach the
warehouse (staging, fct_interventions, intervention_daily).

Events: the 200 real support chats (``../shared/data/real-support-chats``) and generated
conversations with the generator's messy rows (aliases, senders, duplicates, bad rows).
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.capture import CollectorProcess
from support.warehouse import Warehouse, open_warehouse
from support.live import TOKEN, WebhookReceiver, get

REAL_CHATS = Path(__file__).resolve().parents[3] / "shared" / "data" / "real-support-chats" / "chats.jsonl"
pytestmark = pytest.mark.skipif(not REAL_CHATS.exists(),
                                reason="needs the real chats of ../shared/data/real-support-chats beside the repo")


def generated_events(folder: Path) -> list:
    from convo_warehouse.lib.generate import generate_events

    now = datetime.now(UTC).replace(tzinfo=None)
    # the day of ten minutes ago: just after midnight UTC today holds too little time for
    # 150 conversations (the generator refuses a range under a minute)
    day = (now - timedelta(minutes=10)).date()
    generate_events(folder, conversations=150, days=1, seed=29, end_date=day, now=now, progress=False,
                    format_mix="jsonl=1")
    events = []
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # an unreadable line the generator planted: the collector never sees it
    return events


@pytest.fixture(scope="module")
def fed(tmp_path_factory, dbt_target_dir):
    """Every event posted alone to a real collector; the live state read back; the warehouse built."""
    root = tmp_path_factory.mktemp("live-batch")
    events = [json.loads(line) for line in REAL_CHATS.read_text().splitlines()]
    events += generated_events(root / "generated")
    receiver = WebhookReceiver()
    warehouse = Warehouse(root / "warehouse", dbt_target_dir)
    collector = CollectorProcess(warehouse.landing, None, TOKEN, "--webhook-url", receiver.url).start()
    try:
        accepted = 0
        for event in events:
            status, answer, _ = collector.post("/v1/events", json.dumps([event]).encode(), TOKEN)
            assert status == 200, answer
            accepted += answer["accepted"]
        stats = _wait_idle(collector)
        conversations = {event.get("conversation_id") or event.get("session_id") for event in events
                         if isinstance(event, dict)}
        live = {}
        for conversation_id in conversations:
            if not isinstance(conversation_id, str):
                continue
            status, state = get(collector, "/v1/conversations/" + urllib.parse.quote(conversation_id, safe=""))
            if status == 200:
                live[conversation_id] = state
    finally:
        collector.stop()
        receiver.close()

    from convo_warehouse.lib.classify.runner import classify_warehouse

    warehouse.load()
    warehouse.dbt("seed")
    warehouse.build(None, "--exclude", "source:classification+")
    con = open_warehouse(warehouse.path)
    try:
        classify_warehouse(con, "rules", judge=False)
    finally:
        con.close()
    warehouse.build("source:classification+")
    return {"live": live, "warehouse": warehouse, "stats": stats, "accepted": accepted,
            "webhooks": receiver.delivered()}


def _wait_idle(collector: CollectorProcess) -> dict:
    """The live stats once every stored batch is applied."""
    import time

    deadline = time.monotonic() + 120
    stats: dict = {}
    while time.monotonic() < deadline:
        status, stats = get(collector, "/v1/live")
        if status == 200 and not stats["rebuilding"] and stats["applied_batches"] == stats["submitted_batches"]:
            return stats
        time.sleep(0.2)
    raise AssertionError(f"live state still busy: {stats}")


def test_live_stages_equal_the_batch_classifier_on_real_and_generated_chats(fed):
    warehouse, live = fed["warehouse"], fed["live"]
    batch: dict[str, set[str]] = {}
    for conversation_id, stage, reached in warehouse.query(
        "select conversation_id, stage, reached from classification.stage_classifications"
    ):
        stages = batch.setdefault(conversation_id, set())
        if reached:
            stages.add(stage)
    live_stages = {conversation_id: set(state["stages_reached"]) for conversation_id, state in live.items()
                   if state["messages"]}
    real = {conversation_id for conversation_id in batch if conversation_id.startswith("gs-")
            or not conversation_id.startswith("c-")}
    assert len(batch) >= 300 and len(real) >= 190
    differences = {conversation_id: (live_stages.get(conversation_id), stages)
                   for conversation_id, stages in batch.items() if live_stages.get(conversation_id) != stages}
    assert not differences, f"{len(differences)} conversations differ (live, batch): {list(differences.items())[:3]}"
    assert set(live_stages) == set(batch)


def test_live_stage_times_equal_the_batch_stage_times(fed):
    """v1.3: a classified stage's time in the marts is its message's (the first message at which the
    rules reach it), which is the time the live state reports it first reached, message by message
    (every conversation it holds whole: the chats' messages are sent in time order)."""
    warehouse, live = fed["warehouse"], fed["live"]
    batch = {(conversation_id, stage): reached_at for conversation_id, stage, reached_at in warehouse.query(
        "select conversation_id, stage, reached_at from marts.fct_conversation_stages where source = 'rules'")}
    held_whole = {conversation_id for conversation_id, state in live.items()
                  if state["messages"] and not state.get("truncated")}
    compared, differences = 0, []
    for (conversation_id, stage), reached_at in batch.items():
        if conversation_id not in held_whole:
            continue
        shown = next(item for item in live[conversation_id]["stages"] if item["stage"] == stage)
        compared += 1
        live_at = shown["first_reached_at"] and datetime.fromisoformat(shown["first_reached_at"]).replace(tzinfo=None)
        if live_at != reached_at:
            differences.append((conversation_id, stage, shown["first_reached_at"], reached_at))
    assert compared > 1000
    assert not differences, f"{len(differences)} stage times differ (live, batch): {differences[:3]}"


def test_interventions_reach_staging_and_the_marts(fed):
    warehouse = fed["warehouse"]
    fired = {(state["conversation_id"], item["rule"]) for state in fed["live"].values()
             for item in state["interventions"]}
    assert len(fired) >= 20
    assert {(r["body"]["conversation_id"], r["body"]["rule"]) for r in fed["webhooks"]} == fired
    staged = set(warehouse.query(
        "select conversation_id, json_extract_string(properties, '$.rule') from staging.stg_events "
        "where event_type = 'intervention_triggered' and is_known_type"))
    assert staged == fired
    marts = set(warehouse.query("select conversation_id, rule_name from marts.fct_interventions"))
    assert marts == fired
    daily = warehouse.query(
        "select sum(interventions), sum(handed_off + resolved + abandoned + in_progress + unresolved) "
        "from marts.intervention_daily")
    assert daily == [(len(fired), len(fired))]
    by_rule = dict(warehouse.query("select rule_name, sum(interventions) from marts.intervention_daily group by 1"))
    assert set(by_rule) <= {"problem_not_identified", "user_asked_for_human", "negative_sentiment_twice",
                            "fallback_twice_in_a_row"}
    # the intervention event takes the time of the event that triggered it: no conversation's
    # last event moved
    moved = warehouse.scalar("""
        select count(*) from marts.fct_conversations
        where last_event_at > (
            select max(stg_events.event_at) from staging.stg_events
            where stg_events.conversation_id = fct_conversations.conversation_id
                and stg_events.event_type <> 'intervention_triggered')""")
    assert moved == 0
