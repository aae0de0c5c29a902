"""The live state bounded in bytes, and GET /v1/conversations in pages bounded in count and bytes
(issue 47, item 6): what one client sends can no longer grow the worker or one answer without bound."""

from __future__ import annotations

import json

from support.capture import CollectorProcess, wait_for
from support.live import TOKEN, Script, get, send

from convo_warehouse.collector.app import TraceContext
from convo_warehouse.lib.live.state import LiveSettings, LiveState


def event(number: int, conversation: str, content: str = "hello") -> dict:
    return {"event_id": f"{conversation}-{number}", "conversation_id": conversation, "event_type": "user_message",
            "timestamp": f"2026-01-05T10:{number // 60:02d}:{number % 60:02d}Z", "properties": {"content": content}}


def test_the_live_state_stays_within_its_bytes():
    state = LiveState(settings=LiveSettings(max_bytes=400_000))
    for conversation in range(200):
        state.apply([event(number, f"c-{conversation:03d}", "x" * 400) for number in range(10)])
        assert state.bytes <= 400_000
    stats = state.stats()
    assert stats["conversations_evicted"] > 0 and stats["conversations"] < 200
    assert "c-199" in state.conversations and "c-000" not in state.conversations  # least recently active first
    # what is held is what is counted: dropping everything leaves nothing counted
    for conversation_id in list(state.conversations):
        state._drop(conversation_id)
    assert state.bytes == 0


def test_pages_cover_every_conversation_once_and_stay_within_their_bytes():
    state = LiveState()
    for conversation in range(23):
        state.apply([event(1, f"c-{conversation:02d}")], acknowledged_at=1000.0 + conversation % 5)
    seen, after, pages = [], None, 0
    while True:
        page = state.page(limit=5, after=after)
        seen += [item["conversation_id"] for item in page["conversations"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert sorted(seen) == [f"c-{number:02d}" for number in range(23)] and len(seen) == 23 and pages == 5
    small = state.page(limit=1000, max_bytes=2_000)
    assert 0 < len(small["conversations"]) < 23 and small["next"] is not None
    assert len(json.dumps(small["conversations"])) <= 2_000
    assert "error" in state.page(after="not a cursor!")


def test_the_trace_cache_stays_within_its_bytes():
    cache = TraceContext(size=100_000, max_bytes=50_000)
    for number in range(1_000):
        cache.remember({f"trace-{number}": (f"conversation-{number}" * 5, None)})
        assert cache.bytes <= 50_000
    assert cache.get("trace-999", None) is not None and cache.get("trace-0", None) is None


def test_listing_through_the_collector_is_paged(tmp_path):
    collector = CollectorProcess(tmp_path / "landing", None, TOKEN).start()
    try:
        for number in range(7):
            send(collector, Script(f"c-page-{number}").event("user_message", "hello"))
        wait_for(lambda: get(collector, "/v1/conversations?active=true")[1].get("count") == 7, 15, "7 conversations")
        status, answer = get(collector, "/v1/conversations?active=true&limit=10000")
        assert status == 400 and "1 to 1000" in answer["error"]
        names, after = [], ""
        while True:
            status, answer = get(collector, f"/v1/conversations?active=true&limit=3{after}")
            assert status == 200 and answer["count"] <= 3
            names += [item["conversation_id"] for item in answer["conversations"]]
            if answer["next"] is None:
                break
            after = f"&after={answer['next']}"
        assert sorted(names) == [f"c-page-{number}" for number in range(7)]
    finally:
        collector.stop()
