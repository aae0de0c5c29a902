"""The live state's bounds and bookkeeping, without a collector (lib/live/state.py)."""

from __future__ import annotations

from convo_warehouse.lib.live.state import LiveSettings, LiveState


def event(number: int, conversation: str, event_type: str = "user_message", content: str = "hi",
          second: int | None = None) -> dict:
    return {"event_id": f"{conversation}-{number}", "conversation_id": conversation, "event_type": event_type,
            "timestamp": f"2026-01-05T10:00:{second if second is not None else number:02d}Z",
            "properties": {"content": content}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_idle_conversations_are_dropped_after_the_window():
    clock = Clock()
    state = LiveState(settings=LiveSettings(idle_seconds=60), clock=clock)
    state.apply([event(1, "old")], acknowledged_at=clock.now)
    clock.now += 50
    state.apply([event(1, "recent")], acknowledged_at=clock.now)
    clock.now += 20  # old: 70 s idle, recent: 20 s
    assert state.expire() == 1
    assert state.get("old") is None and state.get("recent") is not None
    assert state.stats()["conversations_expired"] == 1


def test_the_least_recently_active_conversation_goes_above_the_cap():
    state = LiveState(settings=LiveSettings(max_conversations=2))
    state.apply([event(1, "a"), event(1, "b"), event(2, "a"), event(1, "c")])
    assert sorted(state.conversations) == ["a", "c"]
    assert state.stats()["conversations_evicted"] == 1
    # its event ids are forgotten with it: nothing of b is counted as a duplicate later
    state.apply([event(1, "b")])
    assert state.stats()["duplicates"] == 0


def test_a_conversation_over_the_event_cap_is_truncated_and_stops_changing():
    state = LiveState(settings=LiveSettings(max_events=3))
    state.apply([event(n, "long", content="hello") for n in range(1, 4)])
    state.apply([event(4, "long", "agent_message", "Hello! Let me check your order number.")])
    detail = state.get("long")
    assert detail["truncated"] is True and detail["messages"] == 3 and detail["stages_reached"] == []
    assert state.stats()["events_over_cap"] == 1


def test_a_late_message_is_placed_in_time_order_and_duplicates_count_once():
    state = LiveState()
    state.apply([event(2, "c", "agent_message", "Hello! I can send a replacement, would that work?", second=20),
                 event(3, "c", "user_message", "yes please", second=30)])
    # the user's first message arrives last but is the earliest
    state.apply([event(1, "c", "user_message", "ok", second=10), event(1, "c", "user_message", "ok", second=10)])
    detail = state.get("c")
    assert detail["messages"] == 3 and state.stats()["duplicates"] == 1
    assert "solution_accepted" in detail["stages_reached"]  # "yes please" still follows the proposal
    assert detail["sentiment_source"] == "lexicon"


def test_unknown_event_types_take_part_in_nothing():
    state = LiveState()
    state.apply([event(1, "u", "custom_thing", "I want a human")])
    assert state.get("u")["interventions"] == [] and state.stats()["unknown_type"] == 1


def test_stored_lines_are_applied_whether_or_not_one_of_them_is_unreadable():
    import json

    lines = [json.dumps(event(n, "lines")).encode() for n in range(1, 4)]
    state = LiveState()
    state.apply_lines(lines)  # read in one decode
    damaged = LiveState()
    damaged.apply_lines([lines[0], b'{"event_id": "cut', lines[1], b"7", lines[2]])  # read line by line
    assert state.get("lines")["user_turns"] == damaged.get("lines")["user_turns"] == 3
    assert (state.counters.unreadable, damaged.counters.unreadable) == (0, 1)
