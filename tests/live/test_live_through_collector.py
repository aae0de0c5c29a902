"""The live state through a real collector on 127.0.0.1: stages as they are reached, interventions to a
local webhook receiver (once each), a restart that rebuilds the state."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from support.capture import CollectorProcess, wait_for
from support.live import TOKEN, Script, WebhookReceiver, applied, get, rule_scripts, send

@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def start_collector(tmp_path, receiver, *extra: str) -> CollectorProcess:
    return CollectorProcess(tmp_path / "landing", None, TOKEN, "--webhook-url", receiver.url, *extra).start()


def reached(state: dict) -> dict[str, str | None]:
    return {stage["stage"]: stage["first_reached_at"] for stage in state["stages"] if stage["reached"]}


def test_stages_show_as_they_are_reached(tmp_path, receiver):
    collector = start_collector(tmp_path, receiver)
    try:
        script = Script("c-live-1")
        send(collector, script.event("conversation_started"))
        steps = [
            ("user_message", "my order 123 never arrived", set()),
            ("agent_message", "Hello! Let me check order 123 for you.", {"greeted", "problem_identified"}),
            ("agent_message", "It was lost. I can send a replacement today, would that work?",
             {"greeted", "problem_identified", "solution_proposed"}),
            ("user_message", "yes please", {"greeted", "problem_identified", "solution_proposed", "solution_accepted"}),
            ("agent_message", "Done. The replacement has been shipped.",
             {"greeted", "problem_identified", "solution_proposed", "solution_accepted", "resolved"}),
        ]
        first_seen = {}
        for number, (event_type, content, expected) in enumerate(steps, start=1):
            event = script.event(event_type, content)
            send(collector, event)
            state = applied(collector, "c-live-1", number)
            assert set(reached(state)) == expected, (content, reached(state))
            for stage in expected - set(first_seen):
                first_seen[stage] = event["timestamp"].replace("Z", ".000000Z")
            assert reached(state) == first_seen  # each stage keeps the time it was first reached
        assert state["user_turns"] == 2 and state["stage"] == "resolved"
        assert state["last_messages"][-1]["text"] == "Done. The replacement has been shipped."
        # sentiment so far: the last user message's ("yes please": no lexicon word)
        assert state["sentiment"] == 0.0 and state["sentiment_source"] == "lexicon"

        status, listing = get(collector, "/v1/conversations?active=true")
        assert status == 200 and [item["conversation_id"] for item in listing["conversations"]] == ["c-live-1"]
        send(collector, script.event("conversation_completed"))
        wait_for(lambda: get(collector, "/v1/conversations?active=true")[1]["count"] == 0, 15, "no longer active")
        assert get(collector, "/v1/conversations?active=false")[1]["count"] == 1
        assert get(collector, "/v1/conversations/nobody")[0] == 404
        unauthorized = urllib.request.Request(collector.url + "/v1/conversations/c-live-1")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unauthorized, timeout=10)
        assert refused.value.code == 401
    finally:
        collector.stop()


def test_each_shipped_rule_fires_once_to_the_webhook_and_into_the_landing_folder(tmp_path, receiver):
    collector = start_collector(tmp_path, receiver)
    scripts = rule_scripts()
    try:
        for events in scripts.values():
            for event in events:
                send(collector, event)  # event by event, as a chat arrives
        wait_for(lambda: len(receiver.delivered()) >= 4, 20, "four interventions delivered")
        # the same conditions again, after the rules fired: none fires twice
        again = {"c-human": [("user_message", "a real person, please")],
                 "c-negative": [("user_message", "terrible"), ("user_message", "awful, useless")],
                 "c-fallback": [("user_message", "blorp"), ("fallback_triggered", None), ("user_message", "blorp"),
                                ("fallback_triggered", None)]}
        for conversation_id, events in again.items():
            script = Script(conversation_id, datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1))
            script.number = 100
            send(collector, *(script.event(event_type, content) for event_type, content in events))
        applied(collector, "c-fallback", 5)
        applied(collector, "c-human", 3)
        time.sleep(1.0)
        delivered = receiver.delivered()
        assert sorted((request["body"]["conversation_id"], request["body"]["rule"]) for request in delivered) == [
            ("c-fallback", "fallback_twice_in_a_row"), ("c-human", "user_asked_for_human"),
            ("c-negative", "negative_sentiment_twice"), ("c-problem", "problem_not_identified")]
        for request in delivered:
            body = request["body"]
            assert request["headers"]["Idempotency-Key"] == body["idempotency_key"]
            assert body["evidence"] and all(item["event_id"] for item in body["evidence"])
        problem = next(r["body"] for r in delivered if r["body"]["rule"] == "problem_not_identified")
        assert problem["stage"] == "greeted" and problem["user_turns"] == 3
        assert [item["event_id"] for item in problem["evidence"]] == [
            "c-problem-001", "c-problem-003", "c-problem-005", "c-problem-006"]
        negative = next(r["body"] for r in delivered if r["body"]["rule"] == "negative_sentiment_twice")
        assert [item["event_id"] for item in negative["evidence"]] == ["c-negative-001", "c-negative-003"]
        assert all(item["sentiment"] < 0 for item in negative["evidence"])

        state = applied(collector, "c-human", 2)
        assert [item["rule"] for item in state["interventions"]] == ["user_asked_for_human"]
    finally:
        collector.stop()
    landed = [json.loads(line) for path in sorted((tmp_path / "landing" / "collector").glob("*/interventions-*.jsonl"))
              for line in path.read_text().splitlines()]
    assert sorted(event["properties"]["rule"] for event in landed) == [
        "fallback_twice_in_a_row", "negative_sentiment_twice", "problem_not_identified", "user_asked_for_human"]
    assert {event["event_type"] for event in landed} == {"intervention_triggered"}
    # at the time of the event that made the rule hold: c-problem-006
    problem_event = next(event for event in landed if event["properties"]["rule"] == "problem_not_identified")
    assert problem_event["properties"]["trigger_event_id"] == "c-problem-006"
    assert problem_event["timestamp"] == scripts["problem_not_identified"][-1]["timestamp"].replace("Z", ".000000Z")


def test_a_restart_rebuilds_the_state_and_fires_nothing_twice(tmp_path, receiver):
    collector = start_collector(tmp_path, receiver)
    script = Script("c-restart")
    first = [script.event("user_message", "I want a human"), script.event("agent_message", "Hello! Let me check.")]
    try:
        for event in first:
            send(collector, event)
        wait_for(lambda: len(receiver.delivered()) == 1, 20, "the intervention delivered")
        before = applied(collector, "c-restart", 2)
    finally:
        collector.stop()
    collector = start_collector(tmp_path, receiver)
    try:
        rebuilt = applied(collector, "c-restart", 2)
        assert reached(rebuilt) == reached(before) and rebuilt["user_turns"] == 1
        assert [item["rule"] for item in rebuilt["interventions"]] == ["user_asked_for_human"]
        send(collector, script.event("user_message", "a human please, a real person"))
        applied(collector, "c-restart", 3)
        time.sleep(1.0)
        assert len(receiver.delivered()) == 1  # the rule had fired before the restart
        status, stats = get(collector, "/v1/live")
        assert status == 200 and stats["rebuild"]["conversations"] == 1
    finally:
        collector.stop()


def test_a_killed_collector_is_rebuilt_too(tmp_path, receiver):
    collector = start_collector(tmp_path, receiver)
    script = Script("c-killed")
    try:
        send(collector, script.event("user_message", "hello"), script.event("agent_message", "Hi! How can I help?"))
        applied(collector, "c-killed", 2)
    finally:
        collector.kill()  # no shutdown code: the landing file is left as .part, the worker orphaned
    collector = start_collector(tmp_path, receiver)
    try:
        assert set(reached(applied(collector, "c-killed", 2))) == {"greeted"}
    finally:
        collector.stop()


def test_webhook_retries_with_the_same_idempotency_key(tmp_path):
    receiver = WebhookReceiver(statuses=[503, 500])
    collector = start_collector(tmp_path, receiver)
    try:
        send(collector, Script("c-retry").event("user_message", "operator please"))
        wait_for(lambda: receiver.delivered(), 20, "delivery after two failures")
        assert [request["status"] for request in receiver.requests] == [503, 500, 200]
        assert len({request["headers"]["Idempotency-Key"] for request in receiver.requests}) == 1
        # the receiver records the 200 before the collector's worker reads the answer and counts it
        wait_for(lambda: get(collector, "/v1/live")[1]["webhook"]["sent"] == 1, 10, "the delivery counted")
        stats = get(collector, "/v1/live")[1]
        assert stats["webhook"]["retried"] == 2 and stats["webhook"]["sent"] == 1
    finally:
        collector.stop()
        receiver.close()


def test_a_hanging_webhook_never_slows_the_acknowledgement(tmp_path):
    receiver = WebhookReceiver()
    release = threading.Event()
    original = receiver.server.RequestHandlerClass.do_POST

    def slow(handler) -> None:
        release.wait(20)
        original(handler)

    receiver.server.RequestHandlerClass.do_POST = slow
    collector = start_collector(tmp_path, receiver)
    try:
        timings = []
        for number in range(20):
            script = Script(f"c-hang-{number}")
            started = time.perf_counter()
            send(collector, script.event("user_message", "get me a human"))
            timings.append(time.perf_counter() - started)
        applied(collector, "c-hang-19", 1)
        assert max(timings) < 2.0, timings
        # all fired (stored in the landing folder) while the receiver still holds the first request
        wait_for(lambda: get(collector, "/v1/live")[1]["interventions_fired"] == 20, 15, "20 interventions fired")
        assert receiver.requests == []
    finally:
        release.set()
        collector.stop()
        receiver.close()


def test_a_full_live_queue_drops_from_the_live_state_without_waiting(tmp_path):
    from convo_warehouse.collector.live import LiveConfig, LiveLink

    link = LiveLink(LiveConfig(landing_dir=tmp_path, max_queue_bytes=1_000))
    link.start()
    try:
        line = json.dumps(Script("c-full").event("user_message", "x" * 2_000)).encode()
        started = time.perf_counter()
        link.submit([line, line], time.time())
        assert time.perf_counter() - started < 0.05
        assert link.dropped_events == 2 and link.submitted_batches == 0
        small = json.dumps(Script("c-small").event("user_message", "hi")).encode()
        link.submit([small], time.time())
        link.wait_until_idle()
        assert link.ask(("conversation", "c-small", None))["messages"] == 1
        assert link.ask(("conversation", "c-full", None)) is None
    finally:
        link.stop()
